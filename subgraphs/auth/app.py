"""The auth subgraph's Litestar app: GraphQL at `/graphql`, the JWKS, probes and metrics.

`create_app(settings)` is what `unityplan serve auth` runs. The app also runs an outbox relay,
so the events its transactions write reach NATS even when no other service is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from litestar import Litestar, MediaType, Request, get
from strawberry.litestar import make_graphql_controller

from core.cache import create_redis
from core.config import Settings
from core.db import Database
from core.events import OutboxRelay
from core.observability.health import database_checks, redis_check
from core.service import create_service_app
from subgraphs.auth.context import AuthContext, build_context
from subgraphs.auth.schema import schema
from subgraphs.auth.service._runtime import AuthRuntime
from subgraphs.auth.service.sessions import purge_expired_sessions

SERVICE_NAME = "auth"
SESSION_PURGE_INTERVAL_SECONDS = 3600
logger = logging.getLogger(__name__)


def create_app(settings: Settings, *, run_outbox_relay: bool = True) -> Litestar:
    db = Database(settings.database)
    redis = create_redis(settings.redis)
    runtime = AuthRuntime.create(settings, db, redis)
    relay: OutboxRelay | None = None
    janitor: asyncio.Task[None] | None = None

    async def context_getter(request: Request[Any, Any, Any]) -> AuthContext:
        return await build_context(runtime, request)

    graphql = make_graphql_controller(
        schema,
        path="/graphql",
        context_getter=context_getter,
        graphql_ide="graphiql" if not settings.is_production else None,
        allow_queries_via_get=True,
    )

    @get("/.well-known/jwks.json", sync_to_thread=False, media_type=MediaType.JSON)
    def jwks() -> dict[str, Any]:
        """The public keys access tokens are verified with (old keys stay while tokens live)."""
        return runtime.keyring.jwks()

    async def start_relay(app: Litestar) -> None:
        nonlocal relay
        if run_outbox_relay and settings.nats.url:
            relay = OutboxRelay(settings, db, registry=app.state.metrics.registry)
            await relay.start()

    async def purge_sessions_periodically() -> None:
        while True:
            await asyncio.sleep(SESSION_PURGE_INTERVAL_SECONDS)
            try:
                await purge_expired_sessions(runtime)
            except Exception:  # a database hiccup must not end the loop
                logger.exception("purging expired sessions failed")

    async def start_janitor(app: Litestar) -> None:
        nonlocal janitor
        janitor = asyncio.create_task(purge_sessions_periodically(), name="session-janitor")

    async def stop(app: Litestar) -> None:
        if janitor is not None:
            janitor.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await janitor
        if relay is not None:
            await relay.stop()
        await runtime.feed.close()
        await runtime.mail.drain()
        await asyncio.gather(db.dispose(), redis.aclose())

    app = create_service_app(
        SERVICE_NAME,
        settings,
        route_handlers=[graphql, jwks],
        on_startup=[start_relay, start_janitor],
        on_shutdown=[stop],
        readiness={**database_checks(db), "redis": redis_check(redis)},
    )
    app.state.auth_runtime = runtime
    return app
