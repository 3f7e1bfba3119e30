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

from core.background import cancelled_meanwhile, stop_tasks
from core.config import Settings
from core.errors import is_outage
from core.kit.app import SubgraphClients, create_subgraph_app
from core.kit.graphql import Connection
from core.security import JWKS_PATH
from subgraphs.auth.context import AuthContext, build_context
from subgraphs.auth.runtime import AuthRuntime
from subgraphs.auth.schema import schema
from subgraphs.auth.service.secrets_at_rest import seal_stored_secrets
from subgraphs.auth.service.sessions import purge_expired_sessions, restore_revocations

SERVICE_NAME = "auth"
SESSION_PURGE_INTERVAL_SECONDS = 3600
# How often the auth subgraph checks that Redis still holds the session denylist.
REVOCATION_CHECK_SECONDS = 1.0
logger = logging.getLogger(__name__)


def create_app(settings: Settings, *, run_outbox_relay: bool = True) -> Litestar:
    clients = SubgraphClients.open(settings)
    runtime = AuthRuntime.create(settings, clients.db, clients.redis)
    tasks: list[asyncio.Task[None]] = []

    async def context_getter(request: Connection) -> AuthContext:
        return await build_context(runtime, request)

    @get(JWKS_PATH, sync_to_thread=False, media_type=MediaType.JSON)
    def jwks() -> dict[str, Any]:
        """The public keys access tokens are verified with (old keys stay while tokens live)."""
        return runtime.keyring.jwks()

    async def purge_sessions_periodically() -> None:
        while True:
            await asyncio.sleep(SESSION_PURGE_INTERVAL_SECONDS)
            try:
                await purge_expired_sessions(runtime)
            except Exception as exc:  # a database hiccup must not end the loop
                if cancelled_meanwhile():
                    raise asyncio.CancelledError from exc
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
                if cancelled_meanwhile():
                    raise asyncio.CancelledError from exc
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
        tasks.append(asyncio.create_task(purge_sessions_periodically(), name="session-janitor"))
        with contextlib.suppress(Exception):  # the loop below says why, and keeps trying
            await restore_revocations(runtime)  # before the first request is served
        tasks.append(asyncio.create_task(keep_denylist_complete(), name="denylist-restorer"))
        tasks.append(asyncio.create_task(seal_secrets(), name="seal-secrets"))

    async def stop(app: Litestar) -> None:
        await stop_tasks(tasks)
        await runtime.feed.close()
        await runtime.mail.drain()

    relaying = run_outbox_relay and bool(settings.nats.url)
    app = create_subgraph_app(
        SERVICE_NAME,
        clients,
        schema=schema,
        context_getter=context_getter,
        route_handlers=[jwks],
        on_startup=[start_janitor],
        on_shutdown=[stop],
        run_outbox_relay=run_outbox_relay,
        # Without NATS events wait in the outbox: the relay's connection is the one to check.
        nats=clients.relay_client if relaying else None,
        open_paths=(JWKS_PATH,),
    )
    app.state.auth_runtime = runtime
    return app
