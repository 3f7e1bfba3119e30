"""DataLoaders of one request: every User/Profile field of a batch costs a constant number of
queries (one global lookup at most, then a few per territory in the batch)."""

from __future__ import annotations

import asyncio
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass
from uuid import UUID

from strawberry.dataloader import DataLoader

from core.db import Database
from subgraphs.user.directory import UserDirectory
from subgraphs.user.privacy import NO_RELATIONSHIP, Relationship, may_view_profile
from subgraphs.user.records import ProfileRecord
from subgraphs.user.repository import UserRepository


@dataclass(frozen=True)
class OwnerView:
    """A user as the viewer of this request may see them."""

    user_id: UUID
    territory: str | None
    profile: ProfileRecord | None  # None: missing, or hidden from the viewer
    relationship: Relationship

    @property
    def visible(self) -> bool:
        return self.profile is not None


@dataclass(frozen=True)
class Counts:
    followers: int = 0
    following: int = 0


class Loaders:
    def __init__(self, db: Database, directory: UserDirectory, viewer_id: UUID | None) -> None:
        self._db = db
        self._directory = directory
        self._viewer_id = viewer_id
        self.owners: DataLoader[UUID, OwnerView] = DataLoader(load_fn=self._load_owners)
        self.counts: DataLoader[UUID, Counts] = DataLoader(load_fn=self._load_counts)
        self._blocked_with_viewer: set[UUID] | None = None

    async def _by_territory(self, user_ids: Sequence[UUID]) -> dict[str, list[UUID]]:
        homes = await self._directory.home_territories(user_ids)
        groups: dict[str, list[UUID]] = defaultdict(list)
        for user_id in dict.fromkeys(user_ids):
            if user_id in homes:
                groups[homes[user_id]].append(user_id)
        return groups

    async def _load_owners(self, user_ids: Sequence[UUID]) -> list[OwnerView]:
        groups = await self._by_territory(user_ids)
        # Territories (perhaps on different pods) are read at the same time, each in its own
        # session.
        parts = await asyncio.gather(
            *(self._owners_in(territory, members) for territory, members in groups.items())
        )
        views = {view.user_id: view for part in parts for view in part}
        return [
            views.get(user_id) or OwnerView(user_id, None, None, NO_RELATIONSHIP)
            for user_id in user_ids
        ]

    async def _owners_in(self, territory: str, members: list[UUID]) -> list[OwnerView]:
        async with self._db.territory_session(territory) as session:
            repo = UserRepository(session)
            profiles = await repo.profiles(members)
            relationships = (
                await repo.relationships(self._viewer_id, members)
                if self._viewer_id is not None
                else {}
            )
        views = []
        for user_id in members:
            profile = profiles.get(user_id)
            relationship = relationships.get(user_id, NO_RELATIONSHIP)
            if profile is not None and not may_view_profile(
                profile.visibility,
                owner_id=user_id,
                viewer_id=self._viewer_id,
                relationship=relationship,
            ):
                profile = None
            views.append(OwnerView(user_id, territory, profile, relationship))
        return views

    async def _load_counts(self, user_ids: Sequence[UUID]) -> list[Counts]:
        groups = await self._by_territory(user_ids)
        parts = await asyncio.gather(
            *(self._counts_in(territory, members) for territory, members in groups.items())
        )
        counts = {user_id: count for part in parts for user_id, count in part.items()}
        return [counts.get(user_id, Counts()) for user_id in user_ids]

    async def _counts_in(self, territory: str, members: list[UUID]) -> dict[UUID, Counts]:
        async with self._db.territory_session(territory) as session:
            repo = UserRepository(session)
            followers = await repo.follower_counts(members)
            following = await repo.following_counts(members)
        return {
            user_id: Counts(followers.get(user_id, 0), following.get(user_id, 0))
            for user_id in members
        }

    async def blocked_with_viewer(self, viewer_territory: str | None) -> set[UUID]:
        """Everyone the viewer blocked or is blocked by: never shown to them in a list.

        The viewer's territory holds every block involving the viewer (see models.py)."""
        if self._viewer_id is None or viewer_territory is None:
            return set()
        if self._blocked_with_viewer is None:
            async with self._db.territory_session(viewer_territory) as session:
                self._blocked_with_viewer = await UserRepository(session).blocked_with(
                    self._viewer_id
                )
        return self._blocked_with_viewer
