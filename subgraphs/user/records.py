"""What the repository returns and the services and GraphQL types work with: frozen views of
the mapped rows (a profile read once does not change under the resolver reading it)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from subgraphs.user.models import UserProfile
from subgraphs.user.privacy import MessagePolicy, Theme, Visibility


@dataclass(frozen=True)
class ProfileRecord:
    user_id: UUID
    about: str | None
    interests: list[str]
    skills: list[str]
    languages: list[str]
    location: str | None
    website_url: str | None
    github_url: str | None
    linkedin_url: str | None
    twitter_handle: str | None
    theme: Theme
    visibility: Visibility
    show_email: bool
    show_real_name: bool
    allow_messages_from: MessagePolicy
    avatar: dict[str, Any] | None
    metadata: dict[str, Any]
    created_at: datetime
    updated_at: datetime

    @classmethod
    def of(cls, profile: UserProfile) -> ProfileRecord:
        return cls(
            user_id=profile.user_id,
            about=profile.about,
            interests=list(profile.interests or []),
            skills=list(profile.skills or []),
            languages=list(profile.languages or []),
            location=profile.location,
            website_url=profile.website_url,
            github_url=profile.github_url,
            linkedin_url=profile.linkedin_url,
            twitter_handle=profile.twitter_handle,
            theme=Theme(profile.theme),
            visibility=Visibility(profile.visibility),
            show_email=profile.show_email,
            show_real_name=profile.show_real_name,
            allow_messages_from=MessagePolicy(profile.allow_messages_from),
            avatar=profile.avatar,
            metadata=dict(profile.extra or {}),
            created_at=profile.created_at,
            updated_at=profile.updated_at,
        )

    def export(self) -> dict[str, Any]:
        """The profile as the owner's data export shows it."""
        return {
            "about": self.about,
            "interests": self.interests,
            "skills": self.skills,
            "languages": self.languages,
            "location": self.location,
            "websiteUrl": self.website_url,
            "githubUrl": self.github_url,
            "linkedinUrl": self.linkedin_url,
            "twitterHandle": self.twitter_handle,
            "theme": self.theme.value,
            "visibility": self.visibility.value,
            "showEmail": self.show_email,
            "showRealName": self.show_real_name,
            "allowMessagesFrom": self.allow_messages_from.value,
            "metadata": self.metadata,
            "createdAt": self.created_at.isoformat(),
            "updatedAt": self.updated_at.isoformat(),
        }


@dataclass(frozen=True)
class Edge:
    """One end of a follow edge as a list shows it: the other user and when the follow began."""

    user_id: UUID
    at: datetime


@dataclass(frozen=True)
class Block:
    blocked_id: UUID
    reason: str | None
    created_at: datetime


@dataclass(frozen=True)
class Page:
    edges: list[Edge]
    has_next_page: bool
    total_count: int


@dataclass(frozen=True)
class SearchHit:
    user_id: UUID
    key: str


@dataclass(frozen=True)
class SearchPage:
    hits: list[SearchHit]
    has_next_page: bool
    total_count: int
