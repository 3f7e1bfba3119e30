"""Redis for every service: the client factory and a JSON cache, one key namespace per territory.

Keys read `{REDIS_KEY_PREFIX}{territory}:{name}` (`dk:user:42`); keys that belong to no territory
live under `{REDIS_KEY_PREFIX}_global:`, a name no territory code can take (codes start a-z).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any

import orjson
from redis.asyncio import Redis

from core.config import RedisSettings
from core.db.territories import validate_territory_code
from core.errors import ConfigError

GLOBAL_NAMESPACE = "_global"
_SOCKET_TIMEOUT_SECONDS = 5.0


def create_redis(settings: RedisSettings) -> Redis:
    """An asyncio Redis client (connection pool) for REDIS_URL; bytes in, bytes out."""
    if not settings.url:
        raise ConfigError("REDIS_URL: not configured (`unityplan dev` starts an embedded Redis)")
    client: Redis = Redis.from_url(
        settings.url,
        socket_connect_timeout=_SOCKET_TIMEOUT_SECONDS,
        socket_timeout=_SOCKET_TIMEOUT_SECONDS,
        health_check_interval=30,
    )
    return client


class CacheNamespace:
    """JSON values under one key prefix, each with a time to live."""

    def __init__(self, redis: Redis, prefix: str) -> None:
        self._redis = redis
        self.prefix = prefix

    def key(self, name: str) -> str:
        return self.prefix + name

    async def get(self, name: str) -> Any | None:
        raw = await self._redis.get(self.key(name))
        return None if raw is None else orjson.loads(raw)

    async def set(self, name: str, value: Any, *, ttl_seconds: float) -> None:
        ttl_ms = max(1, int(ttl_seconds * 1000))
        await self._redis.set(self.key(name), orjson.dumps(value), px=ttl_ms)

    async def delete(self, *names: str) -> int:
        if not names:
            return 0
        return int(await self._redis.delete(*(self.key(name) for name in names)))

    async def get_or_load(
        self, name: str, loader: Callable[[], Awaitable[Any]], *, ttl_seconds: float
    ) -> Any:
        """The cached value, or `loader()`'s result, cached. A None result is not cached."""
        cached = await self.get(name)
        if cached is not None:
            return cached
        value = await loader()
        if value is not None:
            await self.set(name, value, ttl_seconds=ttl_seconds)
        return value


class TerritoryCache:
    """Hands out the cache namespace of one territory, or the global one."""

    def __init__(self, redis: Redis, key_prefix: str = "") -> None:
        self._redis = redis
        self._key_prefix = key_prefix

    @classmethod
    def from_settings(cls, redis: Redis, settings: RedisSettings) -> TerritoryCache:
        return cls(redis, settings.key_prefix)

    def territory(self, code: str) -> CacheNamespace:
        # The code becomes part of a key: never let `dk:x` or `*` smuggle in another namespace.
        validate_territory_code(code)
        return CacheNamespace(self._redis, f"{self._key_prefix}{code}:")

    @property
    def global_(self) -> CacheNamespace:
        return CacheNamespace(self._redis, f"{self._key_prefix}{GLOBAL_NAMESPACE}:")
