"""GraphQL types of the user subgraph: its fields of `User`, `Profile`, connections, blocks and
its part of `DataExport`."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, cast

import strawberry
from strawberry.federation.schema_directives import External
from strawberry.scalars import JSON

from core.errors import Forbidden, NotFound
from subgraphs.user.avatars import AvatarSize as AvatarSizeValue
from subgraphs.user.context import Info
from subgraphs.user.export import export_profile
from subgraphs.user.loaders import PageRequest
from subgraphs.user.pagination import EdgeCursor, page_size
from subgraphs.user.privacy import MessagePolicy as MessagePolicyValue
from subgraphs.user.privacy import Theme as ThemeValue
from subgraphs.user.privacy import Visibility
from subgraphs.user.records import Block, Page, ProfileRecord

ProfileVisibility = strawberry.enum(Visibility, name="ProfileVisibility")
Theme = strawberry.enum(ThemeValue, name="Theme")
MessagePolicy = strawberry.enum(MessagePolicyValue, name="MessagePolicy")
AvatarSize = strawberry.enum(AvatarSizeValue, name="AvatarSize")


def _uuid(value: object) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value))
    except ValueError:
        return None


@strawberry.federation.type(keys=["id"])
class User:
    """The user subgraph's fields of the account entity the auth subgraph owns."""

    id: strawberry.ID

    @classmethod
    def of(cls, user_id: uuid.UUID) -> User:
        return cls(id=strawberry.ID(str(user_id)))

    @classmethod
    def resolve_reference(cls, id: strawberry.ID, **_: Any) -> User:
        # No query here: every field goes through the request's DataLoaders, so a batch of
        # representations costs a constant number of queries.
        return cls(id=id)

    @property
    def user_id(self) -> uuid.UUID | None:
        return _uuid(self.id)

    # The auth subgraph's; this subgraph answers it only where it provides it (`userUpdated`).
    @strawberry.field(directives=[External()])  # type: ignore[untyped-decorator]
    async def username(self, info: Info) -> str:
        user_id = self.user_id
        found = await info.context.loaders.usernames.load(user_id) if user_id else None
        if found is None:
            raise NotFound("User not found")
        return found

    # Null where the viewer may not see it.
    @strawberry.field
    async def profile(self, info: Info) -> Profile | None:
        if self.user_id is None:
            return None
        info.context.optional_viewer()
        view = await info.context.loaders.owners.load(self.user_id)
        return Profile(record=view.profile) if view.profile is not None else None

    # Taken over from the auth subgraph (which only knows the account row): an avatar is part
    # of the profile and follows its visibility.
    @strawberry.federation.field(override="auth")  # type: ignore[untyped-decorator]
    async def avatar_url(self, info: Info) -> str | None:
        profile = await _visible_profile(info, self.user_id)
        if profile is None:
            return None
        return info.context.rt.links.url(profile.user_id, profile.avatar, AvatarSizeValue.ORIGINAL)

    @strawberry.field
    async def followers(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> UserConnection:
        return await _edges(info, self.user_id, first, after, followers=True)

    @strawberry.field
    async def following(
        self, info: Info, first: int | None = 20, after: str | None = None
    ) -> UserConnection:
        return await _edges(info, self.user_id, first, after, followers=False)

    @strawberry.field
    async def follower_count(self, info: Info) -> int:
        if not await _visible(info, self.user_id):
            return 0
        assert self.user_id is not None
        return (await info.context.loaders.counts.load(self.user_id)).followers

    @strawberry.field
    async def following_count(self, info: Info) -> int:
        if not await _visible(info, self.user_id):
            return 0
        assert self.user_id is not None
        return (await info.context.loaders.counts.load(self.user_id)).following

    # False when signed out.
    @strawberry.field
    async def viewer_follows(self, info: Info) -> bool:
        if self.user_id is None or info.context.optional_viewer() is None:
            return False
        return (
            await info.context.loaders.owners.load(self.user_id)
        ).relationship.viewer_follows_owner

    # Whether the viewer blocked this user; false when signed out.
    @strawberry.field
    async def viewer_blocked(self, info: Info) -> bool:
        if self.user_id is None or info.context.optional_viewer() is None:
            return False
        return (
            await info.context.loaders.owners.load(self.user_id)
        ).relationship.viewer_blocked_owner

    # Read by the auth subgraph (`email @requires(fields: "showEmail")`), not by clients: the
    # owner allows it and this viewer may see the owner's profile at all. (strawberry's
    # `federation.field` overloads leave a decorated async resolver untyped for mypy.)
    @strawberry.federation.field(inaccessible=True)  # type: ignore[untyped-decorator]
    async def show_email(self, info: Info) -> bool:
        profile = await _visible_profile(info, self.user_id)
        return profile is not None and profile.show_email

    @strawberry.federation.field(inaccessible=True)  # type: ignore[untyped-decorator]
    async def show_real_name(self, info: Info) -> bool:
        profile = await _visible_profile(info, self.user_id)
        return profile is not None and profile.show_real_name


async def _visible_profile(info: Info, user_id: uuid.UUID | None) -> ProfileRecord | None:
    if user_id is None:
        return None
    info.context.optional_viewer()
    return (await info.context.loaders.owners.load(user_id)).profile


async def _visible(info: Info, user_id: uuid.UUID | None) -> bool:
    return await _visible_profile(info, user_id) is not None


@strawberry.type
class Profile:
    record: strawberry.Private[ProfileRecord]

    @strawberry.field
    def user(self) -> User:
        return User.of(self.record.user_id)

    @strawberry.field
    def about(self) -> str | None:
        return self.record.about

    @strawberry.field
    def interests(self) -> list[str]:
        return self.record.interests

    @strawberry.field
    def skills(self) -> list[str]:
        return self.record.skills

    @strawberry.field
    def languages(self) -> list[str]:
        return self.record.languages

    @strawberry.field
    def location(self) -> str | None:
        return self.record.location

    @strawberry.field
    def website_url(self) -> str | None:
        return self.record.website_url

    @strawberry.field
    def github_url(self) -> str | None:
        return self.record.github_url

    @strawberry.field
    def linkedin_url(self) -> str | None:
        return self.record.linkedin_url

    @strawberry.field
    def twitter_handle(self) -> str | None:
        return self.record.twitter_handle

    @strawberry.field
    def theme(self) -> Theme:  # type: ignore[valid-type]
        return self.record.theme

    @strawberry.field
    def visibility(self) -> ProfileVisibility:  # type: ignore[valid-type]
        return self.record.visibility

    @strawberry.field
    def show_email(self) -> bool:
        return self.record.show_email

    @strawberry.field
    def show_real_name(self) -> bool:
        return self.record.show_real_name

    @strawberry.field
    def allow_messages_from(self) -> MessagePolicy:  # type: ignore[valid-type]
        return self.record.allow_messages_from

    @strawberry.field
    def avatar_url(
        self,
        info: Info,
        size: AvatarSize | None = AvatarSizeValue.ORIGINAL,  # type: ignore[valid-type]
    ) -> str | None:
        chosen = AvatarSizeValue(size) if size is not None else AvatarSizeValue.ORIGINAL
        return info.context.rt.links.url(self.record.user_id, self.record.avatar, chosen)

    @strawberry.field
    def updated_at(self) -> datetime:
        return self.record.updated_at


@strawberry.federation.type(shareable=True)
class PageInfo:
    has_next_page: bool
    end_cursor: str | None


@strawberry.type
class UserEdge:
    node: User
    cursor: str
    followed_at: datetime | None


@strawberry.type
class UserConnection:
    edges: list[UserEdge]
    page_info: PageInfo
    total_count: int

    @classmethod
    def empty(cls) -> UserConnection:
        return cls(
            edges=[], page_info=PageInfo(has_next_page=False, end_cursor=None), total_count=0
        )

    @classmethod
    def of_page(cls, page: Page) -> UserConnection:
        edges = [
            UserEdge(
                node=User.of(edge.user_id),
                cursor=EdgeCursor(at=edge.at, user_id=edge.user_id).encode(),
                followed_at=edge.at,
            )
            for edge in page.edges
        ]
        return cls(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page, end_cursor=edges[-1].cursor if edges else None
            ),
            total_count=page.total_count,
        )


async def _edges(
    info: Info, user_id: uuid.UUID | None, first: int | None, after: str | None, *, followers: bool
) -> UserConnection:
    """A follower/following list: empty where the owner's profile is hidden from the viewer,
    and never showing users the viewer blocked or is blocked by."""
    limit = page_size(first)
    cursor = EdgeCursor.decode(after) if after else None
    viewer = info.context.optional_viewer()
    if user_id is None:
        return UserConnection.empty()
    view = await info.context.loaders.owners.load(user_id)
    if view.profile is None or view.territory is None:
        return UserConnection.empty()
    hidden = await info.context.loaders.blocked_with_viewer(
        viewer.territory_code if viewer is not None else None
    )
    page = await info.context.loaders.pages.load(
        PageRequest(user_id, view.territory, followers, cursor, limit, frozenset(hidden))
    )
    return UserConnection.of_page(page)


@strawberry.type
class BlockedUser:
    user: User
    reason: str | None
    blocked_at: datetime

    @classmethod
    def of(cls, block: Block) -> BlockedUser:
        return cls(user=User.of(block.blocked_id), reason=block.reason, blocked_at=block.created_at)


@strawberry.federation.type(keys=["userId"])
class DataExport:
    """The auth subgraph roots the export; this adds what the user subgraph holds."""

    user_id: strawberry.ID

    @classmethod
    def resolve_reference(cls, info: Info, userId: strawberry.ID, **_: Any) -> DataExport:
        viewer = info.context.require_viewer()
        if viewer.user_id != str(userId):
            raise Forbidden("Only the user themself may export their data")
        return cls(user_id=userId)

    # Profile, avatar metadata, follows, followers and blocks.
    @strawberry.field
    async def profile(self, info: Info) -> JSON:
        viewer = info.context.require_viewer()
        if viewer.user_id != str(self.user_id):
            raise Forbidden("Only the user themself may export their data")
        exported = await export_profile(
            info.context.rt.db, uuid.UUID(viewer.user_id), viewer.territory_code
        )
        return cast(JSON, exported)
