"""All SQL of the user subgraph (but search, in search.py), run on a session already bound to
one territory's schema."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    and_,
    delete,
    exists,
    func,
    literal,
    literal_column,
    or_,
    select,
    tuple_,
    union_all,
    update,
)
from sqlalchemy.dialects.postgresql import insert as pg_insert

from core.kit.repository import Repository
from subgraphs.user.models import User, UserBlock, UserConnection, UserProfile
from subgraphs.user.pagination import EdgeCursor
from subgraphs.user.privacy import Relationship
from subgraphs.user.records import Block, Edge, Page, ProfileRecord

# Column defaults of a profile, applied by `reset_profile`.
PROFILE_DEFAULTS: dict[str, Any] = {
    "about": None,
    "interests": [],
    "skills": [],
    "languages": [],
    "location": None,
    "website_url": None,
    "github_url": None,
    "linkedin_url": None,
    "twitter_handle": None,
    "theme": "auto",
    "visibility": "public",
    "show_email": False,
    "show_real_name": True,
    "allow_messages_from": "everyone",
    "metadata": {},
}


class UserRepository(Repository):
    """The user subgraph's queries on one territory's schema."""

    # ------------------------------------------------------------------ users

    async def existing_users(self, user_ids: Collection[UUID]) -> set[UUID]:
        """Those of `user_ids` with an active account in this territory."""
        if not user_ids:
            return set()
        result = await self.session.execute(
            select(User.id).where(User.id.in_(list(user_ids)), User.is_active)
        )
        return set(result.scalars())

    # ------------------------------------------------------------------ profiles

    async def profiles(self, user_ids: Collection[UUID]) -> dict[UUID, ProfileRecord]:
        """Profiles of active users; one is created with defaults where none exists yet."""
        if not user_ids:
            return {}
        wanted = list(user_ids)
        found = await self._select_profiles(wanted)
        missing = [user_id for user_id in wanted if user_id not in found]
        if missing:
            await self.create_profiles(missing)
            found.update(await self._select_profiles(missing))
        return found

    async def _select_profiles(self, user_ids: list[UUID]) -> dict[UUID, ProfileRecord]:
        result = await self.session.scalars(
            select(UserProfile)
            .join(User, User.id == UserProfile.user_id)
            .where(UserProfile.user_id.in_(user_ids), User.is_active)
        )
        return {profile.user_id: ProfileRecord.of(profile) for profile in result}

    async def usernames(self, user_ids: Collection[UUID]) -> dict[UUID, str]:
        """The usernames of active users (the auth subgraph's accounts, read here)."""
        if not user_ids:
            return {}
        rows = await self.session.execute(
            select(User.id, User.username).where(User.id.in_(list(user_ids)), User.is_active)
        )
        return {row.id: row.username for row in rows}

    async def create_profiles(self, user_ids: Collection[UUID]) -> int:
        """Default profiles for those users of this territory that have none (idempotent)."""
        statement = (
            pg_insert(UserProfile)
            .from_select(["user_id"], select(User.id).where(User.id.in_(list(user_ids))))
            .on_conflict_do_nothing(index_elements=["user_id"])
        )
        result = await self.session.execute(statement)
        return int(getattr(result, "rowcount", 0) or 0)

    async def update_profile(self, user_id: UUID, changes: Mapping[str, Any]) -> ProfileRecord:
        # By column: `metadata` is a column name the mapping spells `extra`.
        columns = UserProfile.__table__.c
        result = await self.session.scalars(
            update(UserProfile)
            .where(UserProfile.user_id == user_id)
            .values({columns[name]: value for name, value in changes.items()})
            .values(updated_at=func.now())
            .returning(UserProfile)
        )
        return ProfileRecord.of(result.one())

    async def relationships(
        self, viewer_id: UUID, owner_ids: Collection[UUID]
    ) -> dict[UUID, Relationship]:
        """How the viewer stands towards each owner, in one query (keyed by owner)."""
        return await self._relationships([viewer_id], list(owner_ids), by_owner=True)

    async def relationships_towards(
        self, owner_id: UUID, viewer_ids: Collection[UUID]
    ) -> dict[UUID, Relationship]:
        """How each viewer stands towards one owner, in one query (keyed by viewer)."""
        return await self._relationships(list(viewer_ids), [owner_id], by_owner=False)

    async def _relationships(
        self, viewers: list[UUID], owners: list[UUID], *, by_owner: bool
    ) -> dict[UUID, Relationship]:
        if not viewers or not owners:
            return {}
        c, b = UserConnection, UserBlock
        # Each kind of relationship: its table's viewer column and owner column.
        kinds = (
            ("follows", c.follower_id, c.following_id),
            ("viewer_blocked", b.blocker_id, b.blocked_id),
            ("owner_blocked", b.blocked_id, b.blocker_id),
        )
        rows = await self.session.execute(
            union_all(
                *(
                    select(literal(kind), owner if by_owner else viewer).where(
                        viewer.in_(viewers), owner.in_(owners)
                    )
                    for kind, viewer, owner in kinds
                )
            )
        )
        return _relationships(rows)

    # ------------------------------------------------------------------ follows

    async def follow(
        self, follower_id: UUID, following_id: UUID, *, remote_territory: str | None, at: datetime
    ) -> tuple[datetime, bool]:
        """Record the edge; (when it began, whether it is new). A duplicate keeps its time."""
        inserted = await self.session.execute(
            pg_insert(UserConnection)
            .values(
                follower_id=follower_id,
                following_id=following_id,
                remote_territory=remote_territory,
                created_at=at,
            )
            .on_conflict_do_nothing(index_elements=["follower_id", "following_id"])
            .returning(UserConnection.created_at)
        )
        created = inserted.scalar_one_or_none()
        if created is not None:
            return created, True
        existing = await self.session.execute(
            select(UserConnection.created_at).where(
                UserConnection.follower_id == follower_id,
                UserConnection.following_id == following_id,
            )
        )
        return existing.scalar_one(), False

    async def unfollow(self, follower_id: UUID, following_id: UUID) -> bool:
        result = await self.session.execute(
            delete(UserConnection).where(
                UserConnection.follower_id == follower_id,
                UserConnection.following_id == following_id,
            )
        )
        return bool(getattr(result, "rowcount", 0))

    async def remove_follows_between(self, first: UUID, second: UUID) -> list[tuple[UUID, UUID]]:
        """Delete the follows in both directions; the (follower, following) pairs removed."""
        c = UserConnection
        result = await self.session.execute(
            delete(UserConnection)
            .where(
                or_(
                    and_(c.follower_id == first, c.following_id == second),
                    and_(c.follower_id == second, c.following_id == first),
                )
            )
            .returning(c.follower_id, c.following_id)
        )
        return [(row[0], row[1]) for row in result]

    async def follower_counts(self, user_ids: Collection[UUID]) -> dict[UUID, int]:
        return await self._counts(UserConnection.following_id, user_ids)

    async def following_counts(self, user_ids: Collection[UUID]) -> dict[UUID, int]:
        return await self._counts(UserConnection.follower_id, user_ids)

    async def _counts(self, column: Any, user_ids: Collection[UUID]) -> dict[UUID, int]:
        if not user_ids:
            return {}
        result = await self.session.execute(
            select(column, func.count()).where(column.in_(list(user_ids))).group_by(column)
        )
        return {user_id: int(count) for user_id, count in result}

    async def pages(
        self,
        user_ids: Collection[UUID],
        *,
        followers: bool,
        after: EdgeCursor | None,
        limit: int,
        hidden: Collection[UUID],
    ) -> dict[UUID, Page]:
        """One page per user of their followers (or of whom they follow), newest first, without
        `hidden` users: two queries for the whole batch."""
        c = UserConnection
        owner, other = (
            (c.following_id, c.follower_id) if followers else (c.follower_id, c.following_id)
        )
        conditions: list[ColumnElement[bool]] = [owner.in_(list(user_ids))]
        if hidden:
            conditions.append(other.not_in(list(hidden)))
        totals = await self.session.execute(
            select(owner, func.count()).where(*conditions).group_by(owner)
        )
        if after is not None:
            # Keyset: strictly older than the cursor, ties broken by the other user's id, so
            # follows inserted meanwhile (always newer) never shift or repeat a later page.
            conditions.append(tuple_(c.created_at, other) < tuple_(after.at, after.user_id))
        newest_first = (c.created_at.desc(), other.desc())
        ranked = (
            select(
                owner.label("owner"),
                other.label("other"),
                c.created_at.label("at"),
                func.row_number().over(partition_by=owner, order_by=newest_first).label("rank"),
            )
            .where(*conditions)
            .subquery()
        )
        rows = await self.session.execute(
            select(ranked.c.owner, ranked.c.other, ranked.c.at)
            .where(ranked.c.rank <= limit + 1)
            .order_by(ranked.c.owner, ranked.c.rank)
        )
        edges: dict[UUID, list[Edge]] = {user_id: [] for user_id in user_ids}
        for owner_id, other_id, at in rows:
            edges[owner_id].append(Edge(user_id=other_id, at=at))
        counts = {owner_id: int(count) for owner_id, count in totals}
        return {
            user_id: Page(
                edges=found[:limit],
                has_next_page=len(found) > limit,
                total_count=counts.get(user_id, 0),
            )
            for user_id, found in edges.items()
        }

    # ------------------------------------------------------------------ blocks

    async def blocked_between(self, first: UUID, second: UUID) -> bool:
        b = UserBlock
        result = await self.session.execute(
            select(
                exists().where(
                    or_(
                        and_(b.blocker_id == first, b.blocked_id == second),
                        and_(b.blocker_id == second, b.blocked_id == first),
                    )
                )
            )
        )
        return bool(result.scalar_one())

    async def block(
        self,
        blocker_id: UUID,
        blocked_id: UUID,
        *,
        reason: str | None,
        remote_territory: str | None,
        at: datetime,
    ) -> bool:
        """Record or update the block (a re-block replaces the reason); whether it is new."""
        statement = pg_insert(UserBlock).values(
            blocker_id=blocker_id,
            blocked_id=blocked_id,
            reason=reason,
            remote_territory=remote_territory,
            created_at=at,
        )
        result = await self.session.execute(
            statement.on_conflict_do_update(
                index_elements=["blocker_id", "blocked_id"],
                set_={"reason": statement.excluded.reason},
            ).returning(literal_column_xmax_is_zero())
        )
        return bool(result.scalar_one())

    async def unblock(self, blocker_id: UUID, blocked_id: UUID) -> bool:
        result = await self.session.execute(
            delete(UserBlock).where(
                UserBlock.blocker_id == blocker_id, UserBlock.blocked_id == blocked_id
            )
        )
        return bool(getattr(result, "rowcount", 0))

    async def blocks_by(self, blocker_id: UUID) -> list[Block]:
        """The users `blocker_id` blocked, newest first."""
        b = UserBlock
        rows = await self.session.execute(
            select(b.blocked_id, b.reason, b.created_at)
            .where(b.blocker_id == blocker_id)
            .order_by(b.created_at.desc(), b.blocked_id.desc())
        )
        return [Block(blocked_id=r[0], reason=r[1], created_at=r[2]) for r in rows]

    async def blocked_with(self, user_id: UUID) -> set[UUID]:
        """Everyone `user_id` blocked or was blocked by."""
        b = UserBlock
        rows = await self.session.execute(
            union_all(
                select(b.blocked_id).where(b.blocker_id == user_id),
                select(b.blocker_id).where(b.blocked_id == user_id),
            )
        )
        return set(rows.scalars())

    # ------------------------------------------------------------------ erasure and export

    async def erase_user(self, user_id: UUID) -> dict[str, int]:
        """Delete every row of this territory that mentions the user; counts per table."""
        counts: dict[str, int] = {}
        for name, statement in (
            ("profiles", delete(UserProfile).where(UserProfile.user_id == user_id)),
            (
                "follows",
                delete(UserConnection).where(
                    or_(
                        UserConnection.follower_id == user_id,
                        UserConnection.following_id == user_id,
                    )
                ),
            ),
            (
                "blocks",
                delete(UserBlock).where(
                    or_(UserBlock.blocker_id == user_id, UserBlock.blocked_id == user_id)
                ),
            ),
        ):
            result = await self.session.execute(statement)
            counts[name] = int(getattr(result, "rowcount", 0) or 0)
        return counts

    async def remote_territories_of(self, user_id: UUID) -> set[str]:
        """The other territories holding a copy of one of the user's follows or blocks."""
        c, b = UserConnection, UserBlock
        rows = await self.session.execute(
            union_all(
                select(c.remote_territory).where(
                    or_(c.follower_id == user_id, c.following_id == user_id),
                    c.remote_territory.is_not(None),
                ),
                select(b.remote_territory).where(
                    or_(b.blocker_id == user_id, b.blocked_id == user_id),
                    b.remote_territory.is_not(None),
                ),
            )
        )
        return {code for code in rows.scalars() if code}

    async def all_edges(self, user_id: UUID) -> tuple[list[Edge], list[Edge]]:
        """(whom the user follows, who follows the user), newest first, for the data export."""
        c = UserConnection
        following = await self.session.execute(
            select(c.following_id, c.created_at)
            .where(c.follower_id == user_id)
            .order_by(c.created_at.desc())
        )
        followers = await self.session.execute(
            select(c.follower_id, c.created_at)
            .where(c.following_id == user_id)
            .order_by(c.created_at.desc())
        )
        return (
            [Edge(user_id=r[0], at=r[1]) for r in following],
            [Edge(user_id=r[0], at=r[1]) for r in followers],
        )


def literal_column_xmax_is_zero() -> ColumnElement[bool]:
    """True on the row an upsert inserted, false on one it updated (PostgreSQL's xmax)."""
    return literal_column("xmax = 0")


def _relationships(rows: Iterable[Any]) -> dict[UUID, Relationship]:
    """Relationships from (kind, other user) rows, the kinds named as in the queries above."""
    flags: dict[UUID, set[str]] = {}
    for kind, other in rows:
        flags.setdefault(other, set()).add(kind)
    return {
        other: Relationship(
            viewer_follows_owner="follows" in kinds,
            viewer_blocked_owner="viewer_blocked" in kinds,
            owner_blocked_viewer="owner_blocked" in kinds,
        )
        for other, kinds in flags.items()
    }
