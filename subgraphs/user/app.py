"""The user subgraph's Litestar app: GraphQL at `/graphql` (with multipart uploads), avatar
images at `/avatars/{userId}/{size}`, probes and metrics.

`create_app(settings)` is what `unityplan serve user` runs. It also runs an outbox relay (so
its events reach NATS whatever else runs) and the durable consumers of account events.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from pathlib import Path
from typing import Any

import orjson
from litestar import Litestar, Request, Response
from litestar.exceptions.http_exceptions import RequestEntityTooLarge
from litestar.status_codes import HTTP_413_REQUEST_ENTITY_TOO_LARGE

from core.cache import CacheNamespace, TerritoryCache, create_redis
from core.config import Settings
from core.db import Database
from core.events import EventBus, OutboxRelay
from core.events.live import LiveFeed
from core.kit.context import identify
from core.kit.graphql import Connection, graphql_controller
from core.observability.health import database_checks, nats_check, redis_check
from core.ratelimit import SlidingWindowLimiter
from core.security import KeyRing, SessionRegistry
from core.service import create_service_app
from subgraphs.user.avatar_routes import AVATARS_PREFIX, avatar_route
from subgraphs.user.avatar_service import AvatarLinks
from subgraphs.user.avatars import MAX_UPLOAD_BYTES
from subgraphs.user.context import UserContext, UserRuntime
from subgraphs.user.directory import UserDirectory
from subgraphs.user.event_views import EventViews
from subgraphs.user.events import UserEventHandlers, consume_account_events
from subgraphs.user.loaders import Loaders
from subgraphs.user.s3 import S3BlobStore
from subgraphs.user.schema import build_schema
from subgraphs.user.storage import BlobStore, LocalBlobStore

SERVICE_NAME = "user"
# Room for the multipart envelope (operations, map, part headers) around a 5 MB file; anything
# bigger is refused while streaming, before it is read to the end.
REQUEST_MAX_BYTES = MAX_UPLOAD_BYTES + 256 * 1024
HOME_TERRITORY_TTL_SECONDS = 3600.0


def avatar_storage_dir(settings: Settings) -> Path:
    configured = settings.user.avatar_storage_dir
    return Path(configured) if configured else settings.devstack.dir / "avatars"


def avatar_store(settings: Settings) -> BlobStore:
    if settings.user.avatar_storage_url:
        return S3BlobStore.from_url(settings.user.avatar_storage_url)
    return LocalBlobStore(avatar_storage_dir(settings))


def avatar_public_base_url(settings: Settings) -> str:
    services = settings.services
    return settings.user.avatar_public_base_url or f"http://{services.host}:{services.user_port}"


def create_app(
    settings: Settings,
    *,
    run_outbox_relay: bool = True,
    run_consumers: bool = True,
    blobs: BlobStore | None = None,
    upload_limit: tuple[int, float] = (20, 3600.0),
) -> Litestar:
    db = Database(settings.database)
    redis = create_redis(settings.redis)
    keyring = KeyRing.from_settings(settings)
    revocations = SessionRegistry.from_settings(redis, settings)
    homes = CacheNamespace(
        redis, TerritoryCache.from_settings(redis, settings.redis).global_.key("user-home:")
    )
    directory = UserDirectory(db, redis, homes, ttl_seconds=HOME_TERRITORY_TTL_SECONDS)
    store = blobs or avatar_store(settings)
    runtime = UserRuntime(
        settings=settings,
        db=db,
        directory=directory,
        blobs=store,
        links=AvatarLinks(avatar_public_base_url(settings)),
        feed=LiveFeed(settings.nats, "user-subscriptions"),
        event_views=EventViews(db, directory),
        keyring=keyring,
        revocations=revocations,
        limiter=SlidingWindowLimiter(redis, settings.redis.key_prefix),
        upload_limit=upload_limit,
    )
    relay: OutboxRelay | None = None
    bus: EventBus | None = None

    async def context_getter(request: Connection) -> UserContext:
        viewer, error = await identify(request.headers.get("authorization"), keyring, revocations)
        viewer_id = uuid.UUID(viewer.user_id) if viewer is not None else None
        return UserContext(
            rt=runtime, viewer=viewer, auth_error=error, loaders=Loaders(db, directory, viewer_id)
        )

    base_controller = graphql_controller(
        build_schema(),
        context_getter=context_getter,
        graphql_ide=not settings.is_production,
        multipart_uploads_enabled=True,
    )

    class GraphQLController(base_controller):  # type: ignore[misc, valid-type]
        request_max_body_size = REQUEST_MAX_BYTES
        exception_handlers = {RequestEntityTooLarge: _too_large}  # noqa: RUF012

    async def start(app: Litestar) -> None:
        nonlocal relay, bus
        if not settings.nats.url:
            return
        if run_outbox_relay:
            relay = OutboxRelay(settings, db, registry=app.state.metrics.registry)
            await relay.start()
        if run_consumers:
            # Consumers count their events on the service's registry, served at /metrics.
            bus = EventBus(settings, db, name="unityplan-user", registry=app.state.metrics.registry)
            await bus.connect()
            handlers = UserEventHandlers(db, store, directory)
            app.state.user_consumers = await consume_account_events(bus, handlers)

    async def stop(app: Litestar) -> None:
        if bus is not None:
            with contextlib.suppress(Exception):
                await bus.close()
        if relay is not None:
            await relay.stop()
        with contextlib.suppress(Exception):
            await runtime.feed.close()
        if isinstance(store, S3BlobStore):
            await store.aclose()
        await asyncio.gather(db.dispose(), redis.aclose())

    readiness = {**database_checks(db), "redis": redis_check(redis)}
    if settings.nats.url and run_consumers:
        # The consumers' connection, created at start-up (not ready until then).
        readiness["nats"] = nats_check(lambda: bus.client if bus is not None else None)

    app = create_service_app(
        SERVICE_NAME,
        settings,
        route_handlers=[GraphQLController, avatar_route(runtime)],
        on_startup=[start],
        on_shutdown=[stop],
        readiness=readiness,
        # Redis and NATS down degrade the service (writes still go to the outbox, token
        # checks answer SERVICE_UNAVAILABLE); only the database takes a replica out of rotation.
        degrading=frozenset({"redis", "nats"}),
        router_only=True,
        # Avatar images are public: clients load them straight from here.
        open_paths=(AVATARS_PREFIX,),
        max_body_bytes=REQUEST_MAX_BYTES,
        too_large_body=orjson.dumps(_TOO_LARGE),
    )
    app.state.user_runtime = runtime
    return app


_TOO_LARGE = {
    "data": None,
    "errors": [
        {
            "message": "The request is too large: avatars are at most 5 MB",
            "extensions": {"code": "BAD_USER_INPUT", "field": "file"},
        }
    ],
}


def _too_large(request: Request[Any, Any, Any], exc: RequestEntityTooLarge) -> Response[Any]:
    return Response(_TOO_LARGE, status_code=HTTP_413_REQUEST_ENTITY_TOO_LARGE)
