"""Entity caching in Redis: a cached entity is not fetched again by the same viewer, never
answers another viewer, and a profile update event on NATS evicts that user's entries."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from typing import Any

import pytest

from core.cache import create_redis
from core.config import Settings
from core.events import Event, EventBus
from router.execution.client import SubgraphClient
from router.execution.entity_cache import EntityCache
from router.execution.entity_invalidation import EntityInvalidation
from router.execution.gateway import Gateway
from tests.router.subgraph_kit import FakeSubgraph, serve
from tests.router.test_execution import SHOP_GRAPH, shop_subgraphs

QUERY = "{ topReviews { id author { id email } } }"
ANSWER = {
    "data": {
        "topReviews": [
            {"id": "r1", "author": {"id": "u1", "email": "ada@example.org"}},
            {"id": "r2", "author": {"id": "u2", "email": None}},
        ]
    }
}
ADA = {"authorization": "Bearer ada"}
BOB = {"authorization": "Bearer bob"}


@pytest.fixture(scope="module")
def shop() -> Iterator[tuple[dict[str, FakeSubgraph], dict[str, str]]]:
    subgraphs = shop_subgraphs()
    with ExitStack() as stack:
        urls = {n: stack.enter_context(serve(s.app)) + "/graphql" for n, s in subgraphs.items()}
        yield subgraphs, urls


@pytest.fixture
async def cache(settings: Settings) -> AsyncIterator[EntityCache]:
    redis = create_redis(settings.redis)
    found = EntityCache(redis, f"{settings.redis.key_prefix}entity-test:", {"User": 60})
    try:
        yield found
    finally:
        keys = [key async for key in redis.scan_iter(match=f"{found.prefix}*")]
        if keys:
            await redis.delete(*keys)
        await redis.aclose()


@pytest.fixture
async def gateway(
    shop: tuple[dict[str, FakeSubgraph], dict[str, str]], cache: EntityCache
) -> AsyncIterator[Gateway]:
    for subgraph in shop[0].values():
        subgraph.requests.clear()
    client = SubgraphClient(shop[1])
    try:
        yield Gateway(SHOP_GRAPH, client, entity_cache=cache)
    finally:
        await client.aclose()


async def run(gateway: Gateway, headers: dict[str, str]) -> dict[str, Any]:
    prepared = gateway.prepare(QUERY, None)
    return await gateway.execute(prepared, gateway.coerce_variables(prepared, None), headers)


def entity_requests(shop: tuple[dict[str, FakeSubgraph], dict[str, str]]) -> list[Any]:
    return [
        r["payload"]["variables"]["representations"]
        for r in shop[0]["accounts"].requests
        if "_entities" in r["payload"]["query"]
    ]


async def test_cached_entities_are_not_fetched_again_by_the_same_viewer_only(
    gateway: Gateway, shop: Any, cache: EntityCache
) -> None:
    assert await run(gateway, ADA) == ANSWER
    assert len(entity_requests(shop)) == 1
    assert await run(gateway, ADA) == ANSWER
    assert len(entity_requests(shop)) == 1
    assert cache.hits == 2
    # Another viewer never gets what was fetched for the first.
    assert await run(gateway, BOB) == ANSWER
    assert len(entity_requests(shop)) == 2


async def test_a_profile_update_event_evicts_that_users_entities(
    gateway: Gateway, shop: Any, cache: EntityCache, settings: Settings
) -> None:
    invalidation = EntityInvalidation(settings, cache)
    await invalidation.start()
    publisher = EventBus(settings, name="entity-cache-test")
    await publisher.connect()
    try:
        assert await run(gateway, ADA) == ANSWER
        event = Event(
            type="unityplan.user.profile_updated",
            source="unityplan/user",
            subject="territory.dk.user.profile_updated",
            data={"userId": "u1", "fields": ["display_name"]},
            territory="dk",
        )
        client = publisher.client
        assert client is not None
        await client.publish(publisher.namespace.wire_subject(event.subject), event.to_bytes())
        deadline = time.monotonic() + 10
        while invalidation.evicted < 1:
            assert time.monotonic() < deadline, "the event never evicted the entry"
            await asyncio.sleep(0.02)
        assert await run(gateway, ADA) == ANSWER
        # Only the evicted user is fetched again; the other is still cached.
        assert entity_requests(shop)[-1] == [{"__typename": "User", "id": "u1"}]
    finally:
        await publisher.close()
        await invalidation.stop()


def test_off_unless_types_are_named(settings: Settings) -> None:
    assert settings.router.entity_cache_ttls == {}
