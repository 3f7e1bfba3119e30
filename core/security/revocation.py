"""Immediate session revocation: a Redis denylist of ended session ids, checked on every request.

An entry lives as long as the longest access token of that session could, then expires by itself.
The auth subgraph keeps a durable copy of every entry (its territories' `revoked_sessions`) and
writes the entry before the session's end commits, so a revocation is never lost to a Redis
outage. A Redis that restarted empty has lost entries: the `loaded` marker (set once the durable
copies are back) is checked with every lookup, and without it every lookup fails closed.
"""

from __future__ import annotations

from collections.abc import Iterable

from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from core.cache import GLOBAL_NAMESPACE
from core.config import Settings

# Tokens are accepted up to the verifier's leeway after `exp`; keep entries a little longer.
_EXPIRY_MARGIN_SECONDS = 60


class RevocationsNotLoaded(RedisConnectionError):
    """Redis lost the denylist (it restarted empty) and it is not refilled yet: no token can be
    trusted until it is, so callers fail closed as for any Redis error."""


class SessionRegistry:
    """`revoke` a session and every service refuses its access tokens from the next request on."""

    def __init__(self, redis: Redis, prefix: str, *, default_ttl_seconds: int = 900) -> None:
        self._redis = redis
        self._prefix = f"{prefix}revoked-session:"
        self._loaded = f"{prefix}revocations-loaded"
        self.default_ttl_seconds = default_ttl_seconds + _EXPIRY_MARGIN_SECONDS

    @classmethod
    def from_settings(cls, redis: Redis, settings: Settings) -> SessionRegistry:
        return cls(
            redis,
            f"{settings.redis.key_prefix}{GLOBAL_NAMESPACE}:",
            default_ttl_seconds=settings.security.access_token_ttl_seconds,
        )

    def _key(self, session_id: str) -> str:
        return self._prefix + session_id

    async def revoke(self, session_id: str, ttl_seconds: int | None = None) -> None:
        ttl = ttl_seconds or self.default_ttl_seconds
        await self._redis.set(self._key(session_id), b"1", ex=ttl)

    async def revoke_many(self, session_ids: Iterable[str], ttl_seconds: int | None = None) -> None:
        ttl = ttl_seconds or self.default_ttl_seconds
        async with self._redis.pipeline(transaction=False) as pipe:
            for session_id in session_ids:
                pipe.set(self._key(session_id), b"1", ex=ttl)
            await pipe.execute()

    async def is_revoked(self, session_id: str) -> bool:
        """Whether the session ended; `RevocationsNotLoaded` (a `RedisError`) while the
        denylist is not known to be complete."""
        return bool(await self.revoked_among([session_id]))

    async def revoked_among(self, session_ids: list[str]) -> set[str]:
        """Which of `session_ids` are revoked, in one round trip (long-lived subscriptions)."""
        async with self._redis.pipeline(transaction=False) as pipe:
            pipe.exists(self._loaded)
            for session_id in session_ids:
                pipe.exists(self._key(session_id))
            loaded, *found = await pipe.execute()
        if not loaded:
            raise RevocationsNotLoaded("the session denylist is being refilled")
        return {session_id for session_id, hit in zip(session_ids, found, strict=True) if hit}

    async def is_loaded(self) -> bool:
        return bool(await self._redis.exists(self._loaded))

    async def restore(self, entries: Iterable[tuple[str, int]]) -> int:
        """Refill the denylist with `(session id, seconds left)` entries (the durable copies),
        then mark it complete; returns how many were written."""
        written = 0
        async with self._redis.pipeline(transaction=False) as pipe:
            for session_id, ttl_seconds in entries:
                if ttl_seconds > 0:
                    pipe.set(self._key(session_id), b"1", ex=ttl_seconds)
                    written += 1
            pipe.set(self._loaded, b"1")
            await pipe.execute()
        return written
