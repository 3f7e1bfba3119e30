"""Login sessions: token pairs, refresh rotation with a grace window, reuse detection, ending.

A session is one login. Its current refresh token is stored hashed on the row; each refresh
moves the old hash to `rotated_refresh_tokens`. Presenting a rotated token again is either a
client that raced two refreshes (within the grace window: it gets the same new pair) or a
stolen token being replayed (after it: the whole session ends, everywhere, at once).
"""

from __future__ import annotations

import logging
import math
import uuid
from dataclasses import dataclass
from datetime import timedelta

import orjson
from redis.exceptions import RedisError
from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidToken, ServiceUnavailable
from core.kit.repository import ClientInfo
from core.security import access_token_claims
from subgraphs.auth import events
from subgraphs.auth.models import RotatedRefreshToken, Session
from subgraphs.auth.repository import GlobalRepository, TerritoryRepository
from subgraphs.auth.runtime import AuthRuntime, utcnow
from subgraphs.auth.tokens import (
    new_territory_token,
    open_as_holder,
    seal_for_holder,
    territory_of,
    token_hash,
)

logger = logging.getLogger("unityplan.auth.sessions")


@dataclass(frozen=True)
class TokenPair:
    access_token: str
    refresh_token: str
    expires_in: int
    session_id: uuid.UUID


async def roles_of(rt: AuthRuntime, user_id: uuid.UUID) -> list[str]:
    """Token roles: platform roles as they are, territory roles as `<role>:<code>`."""
    async with rt.db.global_session() as session:
        repo = GlobalRepository(session)
        platform = await repo.platform_roles(user_id)
        territorial = await repo.territory_roles(user_id)
    return platform + [f"{role}:{code}" for code, role in territorial]


def sign_access_token(
    rt: AuthRuntime,
    *,
    user_id: uuid.UUID,
    username: str,
    territory_code: str,
    session_id: uuid.UUID,
    roles: list[str],
) -> str:
    claims = access_token_claims(
        user_id=str(user_id),
        username=username,
        territory_code=territory_code,
        session_id=str(session_id),
        roles=roles,
    )
    return rt.keyring.sign(claims, ttl_seconds=rt.settings.security.access_token_ttl_seconds)


async def start_session(
    rt: AuthRuntime,
    repo: TerritoryRepository,
    *,
    user_id: uuid.UUID,
    username: str,
    territory_code: str,
    roles: list[str],
    client: ClientInfo,
) -> TokenPair:
    """A new session row and its first token pair (committed by the caller's transaction)."""
    now = utcnow()
    refresh_token = new_territory_token(territory_code)
    session_row = Session(
        id=uuid.uuid4(),
        user_id=user_id,
        token_hash=token_hash(refresh_token),
        ip_address=client.ip_address,
        user_agent=client.user_agent,
        expires_at=now + timedelta(seconds=rt.settings.security.refresh_token_ttl_seconds),
        created_at=now,
        last_used_at=now,
    )
    repo.add(session_row)
    await repo.purge_expired_sessions(user_id, now=now)
    await repo.flush()
    access = sign_access_token(
        rt,
        user_id=user_id,
        username=username,
        territory_code=territory_code,
        session_id=session_row.id,
        roles=roles,
    )
    return TokenPair(
        access, refresh_token, rt.settings.security.access_token_ttl_seconds, session_row.id
    )


def refresh_territory(refresh_token: str) -> str:
    code = territory_of(refresh_token)
    if code is None:
        raise InvalidToken("Invalid refresh token", reason="UNKNOWN", field="refreshToken")
    return code


@dataclass(frozen=True)
class Refreshed:
    pair: TokenPair
    user_id: uuid.UUID


class RefreshReused(Exception):
    """A rotated refresh token came back after the grace window; its session was ended."""

    def __init__(self, session_id: uuid.UUID, user_id: uuid.UUID) -> None:
        super().__init__("refresh token reused")
        self.session_id = session_id
        self.user_id = user_id


async def rotate_refresh_token(
    rt: AuthRuntime,
    session: AsyncSession,
    *,
    refresh_token: str,
    territory_code: str,
    client: ClientInfo,
) -> Refreshed:
    """Exchange a refresh token for a new pair, in the caller's territory transaction.

    Raises `InvalidToken` (UNKNOWN, EXPIRED) or `RefreshReused` (the caller must commit the
    ending of the session, then revoke it in the registry and report REUSED).
    """
    repo = TerritoryRepository(session)
    now = utcnow()
    hashed = token_hash(refresh_token)
    current = await repo.session_by_token_hash(hashed)
    if current is None:
        return await _rotated_again(rt, repo, refresh_token, hashed, territory_code)
    if current.expires_at <= now:  # purged with the other expired sessions
        raise InvalidToken("Refresh token has expired", reason="EXPIRED", field="refreshToken")
    user = await repo.user(current.user_id)
    if user is None or not user.is_active:
        raise InvalidToken("Invalid refresh token", reason="UNKNOWN", field="refreshToken")
    roles = await roles_of(rt, user.id)
    new_refresh = new_territory_token(territory_code)
    access = sign_access_token(
        rt,
        user_id=user.id,
        username=user.username,
        territory_code=territory_code,
        session_id=current.id,
        roles=roles,
    )
    ttl = rt.settings.security.access_token_ttl_seconds
    sealed = seal_for_holder(
        refresh_token, orjson.dumps({"access": access, "refresh": new_refresh})
    )
    repo.add(
        RotatedRefreshToken(
            token_hash=hashed, session_id=current.id, rotated_at=now, successor_ciphertext=sealed
        )
    )
    # Pairs kept for raced refreshes are of no use once their window has passed.
    await repo.forget_successors(
        current.id, rotated_before=now - timedelta(seconds=rt.settings.auth.refresh_grace_seconds)
    )
    current.token_hash = token_hash(new_refresh)
    current.last_used_at = now
    if client.ip_address:
        current.ip_address = client.ip_address
    if client.user_agent:
        current.user_agent = client.user_agent
    await repo.flush()
    await events.user_event(
        session, territory_code, "token_refreshed", user.id, sessionId=str(current.id)
    )
    return Refreshed(TokenPair(access, new_refresh, ttl, current.id), user.id)


async def _rotated_again(
    rt: AuthRuntime,
    repo: TerritoryRepository,
    refresh_token: str,
    hashed: str,
    territory_code: str,
) -> Refreshed:
    rotated = await repo.rotated_token(hashed)
    if rotated is None:
        raise InvalidToken("Invalid refresh token", reason="UNKNOWN", field="refreshToken")
    owner = await repo.login_session(rotated.session_id)
    if owner is None:  # the session already ended (logout, an earlier reuse)
        raise InvalidToken("Invalid refresh token", reason="UNKNOWN", field="refreshToken")
    age = (utcnow() - rotated.rotated_at).total_seconds()
    if age <= rt.settings.auth.refresh_grace_seconds and rotated.successor_ciphertext:
        opened = open_as_holder(refresh_token, rotated.successor_ciphertext)
        if opened is not None:
            pair = orjson.loads(opened)
            return Refreshed(
                TokenPair(
                    pair["access"],
                    pair["refresh"],
                    rt.settings.security.access_token_ttl_seconds,
                    owner.id,
                ),
                owner.user_id,
            )
    ended = await repo.end_sessions(owner.user_id, only=owner.id)
    await _revoke_before_commit(rt, repo, owner.user_id, [row.id for row in ended])
    repo.audit(
        "session.refresh_reuse",
        territory_code=territory_code,
        user_id=owner.user_id,
        resource_type="session",
        resource_id=str(owner.id),
    )
    await events.session_revoked(
        repo.session, territory_code, owner.user_id, ended, "REFRESH_REUSE"
    )
    raise RefreshReused(owner.id, owner.user_id)


async def end_sessions(
    rt: AuthRuntime,
    repo: TerritoryRepository,
    *,
    territory_code: str,
    user_id: uuid.UUID,
    reason: str,
    only: uuid.UUID | None = None,
    keep: uuid.UUID | None = None,
) -> list[uuid.UUID]:
    """Delete sessions, keep their revocation durably and put it on the denylist, all before the
    caller's transaction commits: `ServiceUnavailable` (and the whole change rolls back) when
    the denylist cannot be written, so no ended session's token outlives its end."""
    ended = await repo.end_sessions(user_id, only=only, keep=keep)
    await _revoke_before_commit(rt, repo, user_id, [row.id for row in ended])
    if ended:
        await events.session_revoked(repo.session, territory_code, user_id, ended, reason)
    return [row.id for row in ended]


async def _revoke_before_commit(
    rt: AuthRuntime, repo: TerritoryRepository, user_id: uuid.UUID, session_ids: list[uuid.UUID]
) -> None:
    if not session_ids:
        return
    now = utcnow()
    lifetime = timedelta(seconds=rt.revocations.default_ttl_seconds)
    repo.record_revocations(session_ids, user_id, now=now, expires_at=now + lifetime)
    try:
        await rt.revocations.revoke_many([str(s) for s in session_ids])
    except RedisError as exc:
        logger.warning("session denylist unavailable, the change is rolled back: %s", exc)
        raise ServiceUnavailable(
            "Sessions cannot be ended right now; nothing was changed, try again"
        ) from exc


async def purge_expired_sessions(rt: AuthRuntime) -> int:
    """Delete every expired session of every territory (their rotated tokens go with them)."""
    purged = 0
    now = utcnow()
    for territory in await rt.db.territories():
        async with rt.db.territory_session(territory.code) as session:
            purged += await TerritoryRepository(session).purge_all_expired_sessions(now)
    return purged


async def restore_revocations(rt: AuthRuntime) -> int | None:
    """Refill the session denylist from every territory's durable revocations when Redis lost
    it (restarted empty); None when it is complete. Until it is, lookups fail closed."""
    if await rt.revocations.is_loaded():
        return None
    now = utcnow()
    entries: list[tuple[str, int]] = []
    for territory in await rt.db.territories():
        async with rt.db.territory_session(territory.code) as session:
            for session_id, until in await TerritoryRepository(session).live_revocations(now):
                entries.append((str(session_id), math.ceil((until - now).total_seconds())))
    return await rt.revocations.restore(entries)
