"""TerritoryCache: per-territory key namespaces, JSON values with TTL, the global namespace."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator

import pytest
from redis.asyncio import Redis

from core.cache import TerritoryCache, create_redis
from core.config import RedisSettings, Settings
from core.errors import BadUserInput, ConfigError


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = create_redis(settings.redis)
    yield client
    await client.aclose()


@pytest.fixture
async def prefix(settings: Settings, redis: Redis) -> AsyncIterator[str]:
    """A key prefix of this test alone; its keys are removed afterwards."""
    mine = f"{settings.redis.key_prefix}{secrets.token_hex(4)}:"
    yield mine
    keys = [key async for key in redis.scan_iter(match=f"{mine}*")]
    if keys:
        await redis.delete(*keys)


@pytest.fixture
def cache(redis: Redis, prefix: str) -> TerritoryCache:
    return TerritoryCache(redis, prefix)


async def test_json_round_trip_under_the_territory_key(
    cache: TerritoryCache, redis: Redis, prefix: str
) -> None:
    dk = cache.territory("dk")
    value = {"id": 42, "name": "Ærø", "tags": ["a", "b"], "nested": {"ok": True}}
    await dk.set("user:42", value, ttl_seconds=60)

    assert await dk.get("user:42") == value
    assert await redis.exists(f"{prefix}dk:user:42")
    assert 0 < await redis.pttl(f"{prefix}dk:user:42") <= 60_000


async def test_territories_do_not_see_each_other(cache: TerritoryCache) -> None:
    await cache.territory("dk").set("setting", "danish", ttl_seconds=60)
    await cache.territory("de").set("setting", "german", ttl_seconds=60)
    await cache.global_.set("setting", "global", ttl_seconds=60)

    assert await cache.territory("dk").get("setting") == "danish"
    assert await cache.territory("de").get("setting") == "german"
    assert await cache.global_.get("setting") == "global"
    assert await cache.territory("se").get("setting") is None


async def test_global_namespace_cannot_be_reached_as_a_territory(
    cache: TerritoryCache, prefix: str
) -> None:
    assert cache.global_.key("x") == f"{prefix}_global:x"
    with pytest.raises(BadUserInput):
        cache.territory("_global")


@pytest.mark.parametrize("code", ["DK", "dk:x", "*", "../x", "d", "dk; drop", "a" * 200, ""])
def test_invalid_territory_codes_rejected(cache: TerritoryCache, code: str) -> None:
    with pytest.raises(BadUserInput):
        cache.territory(code)


async def test_delete(cache: TerritoryCache) -> None:
    dk = cache.territory("dk")
    await dk.set("a", 1, ttl_seconds=60)
    await dk.set("b", 2, ttl_seconds=60)
    assert await dk.delete("a", "b", "missing") == 2
    assert await dk.delete() == 0
    assert await dk.get("a") is None


async def test_values_expire(cache: TerritoryCache) -> None:
    dk = cache.territory("dk")
    await dk.set("short", "lived", ttl_seconds=0.2)
    deadline = time.monotonic() + 5
    while await dk.get("short") is not None:
        assert time.monotonic() < deadline, "cached value never expired"
        await asyncio.sleep(0.05)


async def test_get_or_load_loads_once(cache: TerritoryCache) -> None:
    calls = 0

    async def load() -> dict[str, int]:
        nonlocal calls
        calls += 1
        return {"members": 7}

    dk = cache.territory("dk")
    assert await dk.get_or_load("stats", load, ttl_seconds=60) == {"members": 7}
    assert await dk.get_or_load("stats", load, ttl_seconds=60) == {"members": 7}
    assert calls == 1


async def test_get_or_load_does_not_cache_none(cache: TerritoryCache) -> None:
    calls = 0

    async def load() -> None:
        nonlocal calls
        calls += 1

    dk = cache.territory("dk")
    assert await dk.get_or_load("nothing", load, ttl_seconds=60) is None
    assert await dk.get_or_load("nothing", load, ttl_seconds=60) is None
    assert calls == 2


def test_client_needs_a_url() -> None:
    with pytest.raises(ConfigError, match="REDIS_URL"):
        create_redis(RedisSettings.model_validate({"REDIS_URL": ""}))
