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
from subgraphs.user.pagination import EdgeCursor
from subgraphs.user.privacy import NO_RELATIONSHIP, Relationship, may_view_profile
from subgraphs.user.records import Page, ProfileRecord
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

    @classmethod
    def seen_by(
        cls,
        viewer_id: UUID | None,
        user_id: UUID,
        territory: str | None,
        profile: ProfileRecord | None,
        relationship: Relationship,
    ) -> OwnerView:
        """The owner as `viewer_id` may see them: the profile hidden unless its visibility and
        their relationship allow it."""
        if profile is not None and not may_view_profile(
            profile.visibility, owner_id=user_id, viewer_id=viewer_id, relationship=relationship
        ):
            profile = None
        return cls(user_id, territory, profile, relationship)


@dataclass(frozen=True)
class PageRequest:
    """One follower/following list of one user, as a field asked for it."""

    user_id: UUID
    territory: str
    followers: bool
    after: EdgeCursor | None
    limit: int
    hidden: frozenset[UUID]


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
        self.pages: DataLoader[PageRequest, Page] = DataLoader(load_fn=self._load_pages)
        self.usernames: DataLoader[UUID, str | None] = DataLoader(load_fn=self._load_usernames)
        self._blocked_with_viewer: asyncio.Future[frozenset[UUID]] | None = None

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
        return [
            OwnerView.seen_by(
                self._viewer_id,
                user_id,
                territory,
                profiles.get(user_id),
                relationships.get(user_id, NO_RELATIONSHIP),
            )
            for user_id in members
        ]

    async def _load_usernames(self, user_ids: Sequence[UUID]) -> list[str | None]:
        groups = await self._by_territory(user_ids)

        async def usernames_in(territory: str, members: list[UUID]) -> dict[UUID, str]:
            async with self._db.territory_session(territory) as session:
                return await UserRepository(session).usernames(members)

        parts = await asyncio.gather(*(usernames_in(t, m) for t, m in groups.items()))
        found = {user_id: name for part in parts for user_id, name in part.items()}
        return [found.get(user_id) for user_id in user_ids]

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

    async def _load_pages(self, requests: Sequence[PageRequest]) -> list[Page]:
        # The users of one list field share everything but the user: one group, two queries.
        groups: dict[tuple[str, bool, EdgeCursor | None, int, frozenset[UUID]], list[UUID]]
        groups = defaultdict(list)
        for r in requests:
            groups[(r.territory, r.followers, r.after, r.limit, r.hidden)].append(r.user_id)

        async def group(
            key: tuple[str, bool, EdgeCursor | None, int, frozenset[UUID]], members: list[UUID]
        ) -> dict[PageRequest, Page]:
            territory, followers, after, limit, hidden = key
            async with self._db.territory_session(territory) as session:
                pages = await UserRepository(session).pages(
                    members, followers=followers, after=after, limit=limit, hidden=hidden
                )
            return {
                PageRequest(user_id, territory, followers, after, limit, hidden): page
                for user_id, page in pages.items()
            }

        parts = await asyncio.gather(*(group(key, members) for key, members in groups.items()))
        found = {request: page for part in parts for request, page in part.items()}
        return [found[request] for request in requests]

    async def blocked_with_viewer(self, viewer_territory: str | None) -> frozenset[UUID]:
        """Everyone the viewer blocked or is blocked by: never shown to them in a list.

        The viewer's territory holds every block involving the viewer (see models.py). Read
        once per request, however many fields ask at the same time."""
        if self._viewer_id is None or viewer_territory is None:
            return frozenset()
        if self._blocked_with_viewer is None:
            self._blocked_with_viewer = asyncio.ensure_future(
                self._read_blocked_with(self._viewer_id, viewer_territory)
            )
        return await self._blocked_with_viewer

    async def _read_blocked_with(self, viewer_id: UUID, territory: str) -> frozenset[UUID]:
        async with self._db.territory_session(territory) as session:
            return frozenset(await UserRepository(session).blocked_with(viewer_id))
