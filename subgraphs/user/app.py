"""The user subgraph's Litestar app: GraphQL at `/graphql` (with multipart uploads), avatar
images at `/avatars/{userId}/{size}`, probes and metrics.

`create_app(settings)` is what `unityplan serve user` runs. It also runs an outbox relay (so
its events reach NATS whatever else runs) and the durable consumers of account events.
"""

from __future__ import annotations

import contextlib

from litestar import Litestar

from core.config import Settings
from core.events import EventBus
from core.kit.app import SubgraphClients, create_subgraph_app
from core.kit.graphql import Connection
from subgraphs.user.avatar_routes import AVATARS_PREFIX, avatar_route
from subgraphs.user.avatars import MAX_UPLOAD_BYTES
from subgraphs.user.context import UserContext, build_context
from subgraphs.user.events import UserEventHandlers, consume_account_events
from subgraphs.user.runtime import SERVICE_NAME, UserRuntime
from subgraphs.user.schema import build_schema
from subgraphs.user.storage import BlobStore

# Room for the multipart envelope (operations, map, part headers) around a 5 MB file; anything
# bigger is refused while streaming, before it is read to the end.
REQUEST_MAX_BYTES = MAX_UPLOAD_BYTES + 256 * 1024
_TOO_LARGE = {
    "data": None,
    "errors": [
        {
            "message": "The request is too large: avatars are at most 5 MB",
            "extensions": {"code": "BAD_USER_INPUT", "field": "file"},
        }
    ],
}


def create_app(
    settings: Settings,
    *,
    run_outbox_relay: bool = True,
    run_consumers: bool = True,
    blobs: BlobStore | None = None,
    upload_limit: tuple[int, float] = (20, 3600.0),
) -> Litestar:
    clients = SubgraphClients.open(settings)
    runtime = UserRuntime.create(
        settings, clients.db, clients.redis, blobs=blobs, upload_limit=upload_limit
    )
    bus: EventBus | None = None

    async def context_getter(request: Connection) -> UserContext:
        return await build_context(runtime, request)

    async def start_consumers(app: Litestar) -> None:
        nonlocal bus
        if not (run_consumers and settings.nats.url):
            return
        # Consumers count their events on the service's registry, served at /metrics.
        bus = EventBus(
            settings, clients.db, name="unityplan-user", registry=app.state.metrics.registry
        )
        await bus.connect()
        handlers = UserEventHandlers(clients.db, runtime.blobs, runtime.directory)
        app.state.user_consumers = await consume_account_events(bus, handlers)

    async def stop(app: Litestar) -> None:
        if bus is not None:
            with contextlib.suppress(Exception):
                await bus.close()
        await runtime.close()

    app = create_subgraph_app(
        SERVICE_NAME,
        clients,
        schema=build_schema(),
        context_getter=context_getter,
        # Avatar images are public: clients load them straight from here.
        route_handlers=[avatar_route(runtime)],
        on_startup=[start_consumers],
        on_shutdown=[stop],
        run_outbox_relay=run_outbox_relay,
        # The consumers' connection, created at start-up (not ready until then).
        nats=(lambda: bus.client if bus is not None else None)
        if run_consumers and settings.nats.url
        else None,
        open_paths=(AVATARS_PREFIX,),
        multipart_uploads=True,
        max_body=(REQUEST_MAX_BYTES, _TOO_LARGE),
    )
    app.state.user_runtime = runtime
    return app
