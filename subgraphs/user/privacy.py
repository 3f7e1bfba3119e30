"""Who may see a profile: the visibility rules of the original, in one pure function.

Every path that exposes a profile (profile, User.profile, search, follower lists) asks this.
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import StrEnum
from uuid import UUID


class Visibility(StrEnum):
    PUBLIC = "public"
    CONNECTIONS = "connections"
    PRIVATE = "private"


class Theme(StrEnum):
    LIGHT = "light"
    DARK = "dark"
    AUTO = "auto"


class MessagePolicy(StrEnum):
    EVERYONE = "everyone"
    CONNECTIONS = "connections"
    NOBODY = "nobody"


@dataclass(frozen=True)
class Relationship:
    """How a viewer stands towards a profile owner, as stored in the owner's territory."""

    viewer_follows_owner: bool = False
    viewer_blocked_owner: bool = False
    owner_blocked_viewer: bool = False

    @property
    def blocked_either_way(self) -> bool:
        return self.viewer_blocked_owner or self.owner_blocked_viewer


NO_RELATIONSHIP = Relationship()


def may_view_profile(
    visibility: Visibility,
    *,
    owner_id: UUID,
    viewer_id: UUID | None,
    relationship: Relationship,
) -> bool:
    """PUBLIC: anyone; CONNECTIONS: viewers who follow the owner; PRIVATE: the owner only.

    A block in either direction hides everything, whatever the visibility.
    """
    if viewer_id is not None and viewer_id == owner_id:
        return True
    if relationship.blocked_either_way:
        return False
    if visibility is Visibility.PUBLIC:
        return True
    if visibility is Visibility.CONNECTIONS:
        return viewer_id is not None and relationship.viewer_follows_owner
    return False
