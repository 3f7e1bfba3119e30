"""The auth subgraph's Litestar app: GraphQL at `/graphql`, the JWKS, probes and metrics.

`create_app(settings)` is what `unityplan serve auth` runs. The app also runs an outbox relay,
so the events its transactions write reach NATS even when no other service is up.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import Any

from litestar import Litestar, MediaType, get

from core.cache import create_redis
from core.config import Settings
from core.db import Database
from core.errors import is_outage
from core.events import OutboxRelay
from core.kit.graphql import Connection, graphql_controller
from core.observability.health import database_checks, nats_check, redis_check
from core.service import create_service_app
from subgraphs.auth.context import AuthContext, build_context
from subgraphs.auth.runtime import AuthRuntime
from subgraphs.auth.schema import schema
from subgraphs.auth.service.secrets_at_rest import seal_stored_secrets
from subgraphs.auth.service.sessions import purge_expired_sessions, restore_revocations

SERVICE_NAME = "auth"
SESSION_PURGE_INTERVAL_SECONDS = 3600
# How often the auth subgraph checks that Redis still holds the session denylist.
REVOCATION_CHECK_SECONDS = 1.0
JWKS_PATH = "/.well-known/jwks.json"
logger = logging.getLogger(__name__)


def create_app(settings: Settings, *, run_outbox_relay: bool = True) -> Litestar:
    db = Database(settings.database)
    redis = create_redis(settings.redis)
    runtime = AuthRuntime.create(settings, db, redis)
    relay: OutboxRelay | None = None
    janitor: asyncio.Task[None] | None = None
    restorer: asyncio.Task[None] | None = None
    sealer: asyncio.Task[None] | None = None

    async def context_getter(request: Connection) -> AuthContext:
        return await build_context(runtime, request)

    graphql = graphql_controller(
        schema, context_getter=context_getter, graphql_ide=not settings.is_production
    )

    @get(JWKS_PATH, sync_to_thread=False, media_type=MediaType.JSON)
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

    async def keep_denylist_complete() -> None:
        """Refill the session denylist whenever Redis comes back empty (checked every
        REVOCATION_CHECK_SECONDS; lookups fail closed meanwhile)."""
        while True:
            try:
                restored = await restore_revocations(runtime)
                if restored is not None:
                    logger.info("session denylist refilled with %d revocations", restored)
            except Exception as exc:  # Redis or the database away: try again next round
                logger.warning("cannot refill the session denylist yet: %s", exc)
            await asyncio.sleep(REVOCATION_CHECK_SECONDS)

    async def seal_secrets() -> None:
        # Secrets from before sealing, or under a key being rotated out, sealed with the newest.
        try:
            sealed = await seal_stored_secrets(runtime)
        except Exception as exc:  # a territory's pod may be away; rows are sealed on next use
            if is_outage(exc):
                logger.warning("sealing stored secrets postponed, a database is away: %s", exc)
            else:
                logger.error("sealing stored secrets failed: %s: %s", type(exc).__name__, exc)
            return
        if sealed:
            logger.info("sealed %d stored secrets with the newest data encryption key", sealed)

    async def start_janitor(app: Litestar) -> None:
        nonlocal janitor, restorer, sealer
        janitor = asyncio.create_task(purge_sessions_periodically(), name="session-janitor")
        with contextlib.suppress(Exception):  # the loop below says why, and keeps trying
            await restore_revocations(runtime)  # before the first request is served
        restorer = asyncio.create_task(keep_denylist_complete(), name="denylist-restorer")
        sealer = asyncio.create_task(seal_secrets(), name="seal-secrets")

    async def stop(app: Litestar) -> None:
        for task in (janitor, restorer, sealer):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        if relay is not None:
            await relay.stop()
        await runtime.feed.close()
        await runtime.mail.drain()
        await asyncio.gather(db.dispose(), redis.aclose())

    readiness = {**database_checks(db), "redis": redis_check(redis)}
    if run_outbox_relay and settings.nats.url:
        # The outbox relay's connection, created at start-up.
        readiness["nats"] = nats_check(lambda: relay.bus.client if relay is not None else None)

    app = create_service_app(
        SERVICE_NAME,
        settings,
        route_handlers=[graphql, jwks],
        on_startup=[start_relay, start_janitor],
        on_shutdown=[stop],
        readiness=readiness,
        # Without Redis tokens cannot be checked (requests get SERVICE_UNAVAILABLE) and
        # without NATS events wait in the outbox: every replica shares both, so neither takes
        # one out of rotation; only the database does.
        degrading=frozenset({"redis", "nats"}),
        router_only=True,
        open_paths=(JWKS_PATH,),
    )
    app.state.auth_runtime = runtime
    return app
