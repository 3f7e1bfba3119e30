"""Where a user lives: the home territory of a user id, from `global.user_identities`.

The answer never comes from the caller. It is cached in Redis (shared by every replica) and
briefly in process; a miss costs one query for a whole batch of ids.
"""

from __future__ import annotations

import time
from collections.abc import Collection
from uuid import UUID

from redis.asyncio import Redis
from sqlalchemy import select

from core.cache import CacheNamespace
from core.db import Database
from subgraphs.user.models import UserIdentity

_LOCAL_TTL_SECONDS = 30.0
_LOCAL_MAX_ENTRIES = 50_000


class UserDirectory:
    def __init__(
        self, db: Database, redis: Redis | None, cache: CacheNamespace | None, *, ttl_seconds: float
    ) -> None:
        self._db = db
        self._redis = redis
        self._cache = cache
        self._ttl = ttl_seconds
        self._local: dict[UUID, tuple[str, float]] = {}

    async def home_territory(self, user_id: UUID) -> str | None:
        return (await self.home_territories([user_id])).get(user_id)

    async def home_territories(self, user_ids: Collection[UUID]) -> dict[UUID, str]:
        """The home territory of each known id; unknown (or deleted) ids are left out."""
        now = time.monotonic()
        found: dict[UUID, str] = {}
        missing: list[UUID] = []
        for user_id in dict.fromkeys(user_ids):
            cached = self._local.get(user_id)
            if cached is not None and cached[1] > now:
                found[user_id] = cached[0]
            else:
                missing.append(user_id)
        if missing and self._redis is not None and self._cache is not None:
            values = await self._redis.mget([self._cache.key(str(u)) for u in missing])
            still_missing = []
            for user_id, value in zip(missing, values, strict=True):
                if value is None:
                    still_missing.append(user_id)
                else:
                    code = value.decode() if isinstance(value, bytes) else str(value)
                    found[user_id] = self._remember(user_id, code, now)
            missing = still_missing
        if missing:
            async with self._db.global_session() as session:
                rows = await session.execute(
                    select(UserIdentity.id, UserIdentity.territory_code).where(
                        UserIdentity.id.in_(missing)
                    )
                )
                loaded = {row[0]: row[1] for row in rows}
            if loaded and self._redis is not None and self._cache is not None:
                async with self._redis.pipeline(transaction=False) as pipe:
                    for user_id, code in loaded.items():
                        pipe.set(self._cache.key(str(user_id)), code, px=int(self._ttl * 1000))
                    await pipe.execute()
            for user_id, code in loaded.items():
                found[user_id] = self._remember(user_id, code, now)
        return found

    async def forget(self, user_id: UUID) -> None:
        """Drop a deleted user from the caches."""
        self._local.pop(user_id, None)
        if self._cache is not None:
            await self._cache.delete(str(user_id))

    def _remember(self, user_id: UUID, code: str, now: float) -> str:
        if len(self._local) >= _LOCAL_MAX_ENTRIES:
            self._local.clear()
        self._local[user_id] = (code, now + min(self._ttl, _LOCAL_TTL_SECONDS))
        return code
