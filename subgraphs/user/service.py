"""Business rules of profiles, follows and blocks: one function per use case, taking the
runtime, like the auth subgraph's.

Each use case runs in one `TerritorySessions` unit of work (a session per territory it
touches), writes through repositories and the outbox, and commits when it returns.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from sqlalchemy import func, select

from core.errors import BadUserInput, Forbidden, NotFound
from subgraphs.user import events
from subgraphs.user.records import Block, ProfileRecord
from subgraphs.user.repository import PROFILE_DEFAULTS, UserRepository
from subgraphs.user.runtime import UserRuntime
from subgraphs.user.sessions import TerritorySessions
from subgraphs.user.validation import BLOCK_REASON_MAX, PRIVACY_COLUMNS, validate_changes


def parse_user_id(value: str, *, field: str = "userId") -> UUID:
    try:
        return UUID(str(value))
    except ValueError as exc:
        raise BadUserInput("Not a user id", field=field) from exc


# ------------------------------------------------------------------ profiles


async def _own_profile(sessions: TerritorySessions, user_id: UUID, territory: str) -> ProfileRecord:
    repo = await sessions.repository(territory)
    profile = (await repo.profiles([user_id])).get(user_id)
    if profile is None:
        raise NotFound("Profile not found")
    return profile


async def update_profile(
    rt: UserRuntime, user_id: UUID, territory: str, sent: Mapping[str, Any]
) -> ProfileRecord:
    """Apply the fields sent (absent: unchanged, None: cleared) after validating them all."""
    async with TerritorySessions(rt.db) as sessions:
        changes = validate_changes(sent)
        before = await _own_profile(sessions, user_id, territory)
        if not changes:
            return before
        repo = await sessions.repository(territory)
        after = await repo.update_profile(user_id, changes)
        await _announce_changes(sessions, territory, user_id, before, after, set(changes))
        return after


async def reset_profile(rt: UserRuntime, user_id: UUID, territory: str) -> ProfileRecord:
    """Every field back to its default (the avatar stays: it has its own mutation)."""
    async with TerritorySessions(rt.db) as sessions:
        before = await _own_profile(sessions, user_id, territory)
        repo = await sessions.repository(territory)
        after = await repo.update_profile(user_id, PROFILE_DEFAULTS)
        await _announce_changes(sessions, territory, user_id, before, after, set(PROFILE_DEFAULTS))
        return after


async def _announce_changes(
    sessions: TerritorySessions,
    territory: str,
    user_id: UUID,
    before: ProfileRecord,
    after: ProfileRecord,
    columns: set[str],
) -> None:
    session = await sessions.session(territory)
    changed = sorted(c for c in columns if getattr(before, c) != getattr(after, c))
    if not changed:
        return
    await events.publish(
        session,
        territory,
        events.PROFILE_UPDATED,
        {**events.ids(userId=user_id), "fields": changed},
        audience=[user_id],
    )
    if PRIVACY_COLUMNS & set(changed):
        await events.publish(
            session,
            territory,
            events.PRIVACY_CHANGED,
            {
                **events.ids(userId=user_id),
                "visibility": after.visibility.value,
                "showEmail": after.show_email,
                "showRealName": after.show_real_name,
                "allowMessagesFrom": after.allow_messages_from.value,
            },
            audience=[user_id],
        )


# ------------------------------------------------------------------ follows


async def follow(
    rt: UserRuntime, follower_id: UUID, follower_home: str, target_id: UUID
) -> datetime:
    """Follow `target_id`; a duplicate returns the existing follow's time."""
    async with TerritorySessions(rt.db) as sessions:
        if target_id == follower_id:
            raise BadUserInput("You cannot follow yourself", field="userId")
        target_home = await _home(rt, target_id)
        await _lock_pair(sessions, follower_id, follower_home, target_id, target_home)
        target_repo = await _existing(sessions, target_id, target_home)
        if await target_repo.blocked_between(follower_id, target_id):
            raise Forbidden("You cannot follow this user")
        cross = target_home != follower_home
        now = datetime.now(UTC)
        # The followed user's territory decides (it holds every block involving them); the
        # follower's side, when it is another territory, mirrors its answer.
        at, new = await target_repo.follow(
            follower_id, target_id, remote_territory=follower_home if cross else None, at=now
        )
        follower_session = await sessions.session(follower_home)
        if cross:
            await UserRepository(follower_session).follow(
                follower_id, target_id, remote_territory=target_home, at=at
            )
        if new:
            data = {
                **events.ids(followerId=follower_id, followingId=target_id),
                "at": at.isoformat(),
            }
            # The followed user hears of it live, whichever territory the follower is in.
            await events.publish(
                follower_session, follower_home, events.FOLLOWED, data, audience=[target_id]
            )
            if cross:
                await events.publish_cross(
                    follower_session, follower_home, target_home, events.CROSS_FOLLOWED, data
                )
        return at


async def unfollow(rt: UserRuntime, follower_id: UUID, follower_home: str, target_id: UUID) -> bool:
    async with TerritorySessions(rt.db) as sessions:
        target_home = await rt.directory.home_territory(target_id)
        removed = False
        if target_home is not None:
            removed = await (await sessions.repository(target_home)).unfollow(
                follower_id, target_id
            )
        if target_home != follower_home:
            mirror = await (await sessions.repository(follower_home)).unfollow(
                follower_id, target_id
            )
            removed = removed or mirror
        if removed:
            await events.publish(
                await sessions.session(follower_home),
                follower_home,
                events.UNFOLLOWED,
                events.ids(followerId=follower_id, followingId=target_id),
            )
        return removed


# ------------------------------------------------------------------ blocks


async def block(
    rt: UserRuntime, blocker_id: UUID, blocker_home: str, target_id: UUID, reason: str | None
) -> None:
    """Block (or re-block with a new reason); follows in both directions end."""
    async with TerritorySessions(rt.db) as sessions:
        if target_id == blocker_id:
            raise BadUserInput("You cannot block yourself", field="userId")
        if reason is not None:
            reason = reason.strip() or None
            if reason is not None and len(reason) > BLOCK_REASON_MAX:
                raise BadUserInput(
                    f"`reason` is longer than {BLOCK_REASON_MAX} characters", field="reason"
                )
        target_home = await _home(rt, target_id)
        # Under the pair lock `follow` takes too, so a concurrent follow either precedes the
        # block (and is removed here) or sees it.
        await _lock_pair(sessions, blocker_id, blocker_home, target_id, target_home)
        target_repo = await _existing(sessions, target_id, target_home)
        cross = target_home != blocker_home
        now = datetime.now(UTC)
        removed = await target_repo.remove_follows_between(blocker_id, target_id)
        blocker_repo = await sessions.repository(blocker_home)
        if cross:
            await target_repo.block(
                blocker_id, target_id, reason=None, remote_territory=blocker_home, at=now
            )
            removed += await blocker_repo.remove_follows_between(blocker_id, target_id)
        new = await blocker_repo.block(
            blocker_id,
            target_id,
            reason=reason,
            remote_territory=target_home if cross else None,
            at=now,
        )
        session = await sessions.session(blocker_home)
        await events.publish(
            session,
            blocker_home,
            events.BLOCKED,
            {**events.ids(blockerId=blocker_id, blockedId=target_id), "new": new},
        )
        for follower, following in dict.fromkeys(removed):
            await events.publish(
                session,
                blocker_home,
                events.UNFOLLOWED,
                events.ids(followerId=follower, followingId=following),
            )


async def unblock(rt: UserRuntime, blocker_id: UUID, blocker_home: str, target_id: UUID) -> bool:
    async with TerritorySessions(rt.db) as sessions:
        removed = await (await sessions.repository(blocker_home)).unblock(blocker_id, target_id)
        target_home = await rt.directory.home_territory(target_id)
        if target_home is not None and target_home != blocker_home:
            await (await sessions.repository(target_home)).unblock(blocker_id, target_id)
        if removed:
            await events.publish(
                await sessions.session(blocker_home),
                blocker_home,
                events.UNBLOCKED,
                events.ids(blockerId=blocker_id, blockedId=target_id),
            )
        return removed


async def blocked_users(rt: UserRuntime, blocker_id: UUID, blocker_home: str) -> list[Block]:
    async with TerritorySessions(rt.db) as sessions:
        return await (await sessions.repository(blocker_home)).blocks_by(blocker_id)


# ------------------------------------------------------------------ helpers


async def _home(rt: UserRuntime, user_id: UUID) -> str:
    home = await rt.directory.home_territory(user_id)
    if home is None:
        raise NotFound("User not found", field="userId")
    return home


async def _existing(sessions: TerritorySessions, user_id: UUID, home: str) -> UserRepository:
    """The repository of the user's home territory; NotFound unless the account is active."""
    repo = await sessions.repository(home)
    if user_id not in await repo.existing_users([user_id]):
        raise NotFound("User not found", field="userId")
    return repo


async def _lock_pair(
    sessions: TerritorySessions, first: UUID, first_home: str, second: UUID, second_home: str
) -> None:
    """Serialise follow and block decisions about one pair of users.

    Both take the lock in the same territory of the two (the lower code) and in the unit's
    first session: sessions commit in reverse order of opening, so the lock is released
    only once every write of the decision is committed, in whichever territories.
    """
    if sessions.opened:
        raise RuntimeError("The pair lock must be taken in the unit's first session")
    repo = await sessions.repository(min(first_home, second_home))
    low, high = sorted((str(first), str(second)))
    key = func.hashtext(f"unityplan.user.pair:{low}:{high}")
    await repo.session.execute(select(func.pg_advisory_xact_lock(key)))
