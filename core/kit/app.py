"""A subgraph's Litestar app, wired the one way every subgraph is: its database and Redis
clients, the outbox relay that carries its events to NATS, the GraphQL endpoint with the
caller's context, probes and metrics, and a shutdown that closes what start-up opened.

A subgraph's `create_app` opens `SubgraphClients`, builds its runtime on them, and hands its
schema, context getter and own routes and hooks to `create_subgraph_app`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import orjson
from litestar import Litestar, Request, Response
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE
from litestar.types import ControllerRouterHandler, LifespanHook
from nats.aio.client import Client as NatsClient
from redis.asyncio import Redis
from strawberry.schema import BaseSchema

from core.cache import create_redis
from core.config import Settings
from core.db import Database
from core.events import OutboxRelay
from core.kit.graphql import ContextGetter, graphql_controller
from core.observability.health import Check, database_checks, nats_check, redis_check
from core.service import create_service_app

NatsProvider = Callable[[], NatsClient | None]


@dataclass
class SubgraphClients:
    """The long-lived clients of one subgraph process: its databases, Redis, and (once started)
    the outbox relay."""

    settings: Settings
    db: Database
    redis: Redis
    relay: OutboxRelay | None = field(default=None, init=False)

    @classmethod
    def open(cls, settings: Settings) -> SubgraphClients:
        return cls(settings, Database(settings.database), create_redis(settings.redis))

    def relay_client(self) -> NatsClient | None:
        """The relay's NATS connection, None until it has started."""
        return self.relay.bus.client if self.relay is not None else None

    async def start_relay(self, app: Litestar) -> None:
        # Events written to the outbox reach NATS whether or not any other service runs.
        if self.settings.nats.url:
            self.relay = OutboxRelay(self.settings, self.db, registry=app.state.metrics.registry)
            await self.relay.start()

    async def close(self, app: Litestar) -> None:
        if self.relay is not None:
            await self.relay.stop()
        await asyncio.gather(self.db.dispose(), self.redis.aclose())


def create_subgraph_app(
    name: str,
    clients: SubgraphClients,
    *,
    schema: BaseSchema,
    context_getter: ContextGetter,
    route_handlers: Sequence[ControllerRouterHandler] = (),
    on_startup: Sequence[LifespanHook] = (),
    on_shutdown: Sequence[LifespanHook] = (),
    run_outbox_relay: bool = True,
    nats: NatsProvider | None = None,
    open_paths: Sequence[str] = (),
    multipart_uploads: bool = False,
    max_body: tuple[int, dict[str, Any]] | None = None,
) -> Litestar:
    """The app of subgraph `name`: GraphQL at `/graphql` (GraphiQL outside production) beside
    `route_handlers`, reachable only through the router except `open_paths`.

    Start-up runs the outbox relay (when `run_outbox_relay` and NATS is configured), then
    `on_startup`; shutdown runs `on_shutdown`, then stops the relay and closes the clients.
    /ready needs the databases; Redis, and NATS when `nats` gives the connection to check, only
    degrade the service: every replica shares them, and it answers what it can meanwhile.
    `max_body` is the largest request in bytes and the GraphQL response refusing a larger one.
    """
    settings = clients.settings
    graphql = graphql_controller(
        schema,
        context_getter=context_getter,
        graphql_ide=not settings.is_production,
        multipart_uploads_enabled=multipart_uploads,
    )
    size_limit: dict[str, Any] = {}
    if max_body is not None:
        graphql = _limited(graphql, *max_body)
        size_limit = {"max_body_bytes": max_body[0], "too_large_body": orjson.dumps(max_body[1])}
    readiness: dict[str, Check] = {
        **database_checks(clients.db),
        "redis": redis_check(clients.redis),
    }
    if nats is not None:
        readiness["nats"] = nats_check(nats)
    startup = [clients.start_relay] if run_outbox_relay else []
    return create_service_app(
        name,
        settings,
        route_handlers=[graphql, *route_handlers],
        on_startup=[*startup, *on_startup],
        on_shutdown=[*on_shutdown, clients.close],
        readiness=readiness,
        degrading=frozenset({"redis", "nats"}),
        router_only=True,
        open_paths=open_paths,
        **size_limit,
    )


def _limited(controller: type[Any], max_bytes: int, too_large: dict[str, Any]) -> type[Any]:
    """`controller` refusing a request body over `max_bytes` while it streams in, with the
    GraphQL response `too_large`."""

    def refuse(request: Request[Any, Any, Any], exc: RequestEntityTooLarge) -> Response[Any]:
        return Response(too_large, status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE)

    class LimitedGraphQL(controller):  # type: ignore[misc]
        request_max_body_size = max_bytes
        exception_handlers = {RequestEntityTooLarge: refuse}  # noqa: RUF012

    return LimitedGraphQL
