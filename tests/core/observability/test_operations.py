"""Root-field outcomes counted by the platform's GraphQL schema, through a real service app."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator
from types import SimpleNamespace

import httpx
import strawberry
from prometheus_client import CollectorRegistry
from strawberry.litestar import BaseContext

from core.config import Settings
from core.errors import InvalidToken, RateLimited
from core.graphql import FederationSchema
from core.kit.graphql import Connection, graphql_controller
from core.service import create_service_app


@strawberry.type
class Query:
    @strawberry.field
    def ping(self) -> str:
        return "pong"


@strawberry.type
class Mutation:
    @strawberry.mutation
    def refresh_token(self, token: str) -> str:
        if token == "old":
            raise InvalidToken("reused", reason="REUSED")
        if token == "many":
            raise RateLimited(retry_after=5)
        if token == "bug":
            raise RuntimeError("unexpected")
        return "new"


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self) -> AsyncGenerator[int, None]:
        for tick in range(100):
            yield tick
            await asyncio.sleep(0)

    @strawberry.subscription
    async def news(self) -> AsyncGenerator[str, None]:
        yield "never asked for"


async def _context(request: Connection) -> BaseContext:
    context = BaseContext()
    context.request = request
    return context


async def test_each_root_field_is_counted_with_its_outcome(settings: Settings) -> None:
    schema = FederationSchema(query=Query, mutation=Mutation)
    controller = graphql_controller(schema, context_getter=_context)
    app = create_service_app("outcomes", settings, route_handlers=[controller])
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://test"
    ) as http:
        for document in (
            "{ ping again: ping }",
            'mutation { a: refreshToken(token: "old") b: refreshToken(token: "new") }',
            'mutation { refreshToken(token: "many") }',
            'mutation { refreshToken(token: "bug") }',
            "{ __typename }",
            "{ nope }",
        ):
            response = await http.post("/graphql", json={"query": document})
            assert response.status_code in {200, 400}, response.text

    def count(operation: str, outcome: str, reason: str = "") -> float | None:
        registry: CollectorRegistry = app.state.metrics.registry
        return registry.get_sample_value(
            "graphql_root_fields_total",
            {
                "operation": operation,
                "field": field(operation),
                "outcome": outcome,
                "reason": reason,
            },
        )

    def field(operation: str) -> str:
        return "ping" if operation == "query" else "refreshToken"

    assert count("query", "ok") == 2  # two response keys, one field name
    assert count("mutation", "ok") == 1
    assert count("mutation", "INVALID_TOKEN", "REUSED") == 1
    assert count("mutation", "RATE_LIMITED") == 1
    assert count("mutation", "INTERNAL_SERVER_ERROR") == 1
    exposition = app.state.metrics.exposition().decode()
    assert 'field="__typename"' not in exposition
    assert 'field="nope"' not in exposition  # invalid documents execute nothing


async def test_subscriptions_are_counted_while_they_run() -> None:
    registry = CollectorRegistry()
    schema = FederationSchema(query=Query, subscription=Subscription)
    context = SimpleNamespace(
        request=SimpleNamespace(
            app=SimpleNamespace(state=SimpleNamespace(metrics=SimpleNamespace(registry=registry)))
        )
    )

    def active(field: str) -> float | None:
        return registry.get_sample_value("graphql_active_subscriptions", {"field": field})

    first = await schema.subscribe("subscription { ticks }", context_value=context)
    second = await schema.subscribe("subscription { again: ticks }", context_value=context)
    received = [await anext(first), await anext(second)]
    assert [r.data for r in received] == [{"ticks": 0}, {"again": 0}]
    assert active("ticks") == 2
    assert active("news") == 0  # every subscription field has a series
    await first.aclose()
    assert active("ticks") == 1
    await second.aclose()
    assert active("ticks") == 0
