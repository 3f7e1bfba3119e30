"""The service app factory: probes against real dependencies, RED metrics, spans, logs."""

from __future__ import annotations

import asyncio
import contextlib
import io
import json
import logging
import re
import socket
from collections.abc import AsyncIterator, Iterator
from typing import Any

import httpx
import nats
import pytest
from litestar import Litestar, Request, get
from litestar.params import FromPath
from nats.aio.client import Client as NatsClient
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from redis.asyncio import Redis

from core.cache import create_redis
from core.config import Settings
from core.db import Database
from core.observability import JsonFormatter
from core.observability.health import database_checks, nats_check, redis_check
from core.observability.http import label_request
from core.security import KeyRing, SessionRegistry, access_token_claims, authenticate
from core.service import create_service_app

TRACE_ID = "4bf92f3577b34da6a3ce929d0e0e4736"
PARENT_SPAN_ID = "00f067aa0ba902b7"
TRACEPARENT = f"00-{TRACE_ID}-{PARENT_SPAN_ID}-01"


def _dead_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@get("/items/{item_id:int}", sync_to_thread=False)
def item(item_id: FromPath[int]) -> dict[str, int]:
    label_request(territory="dk", pod="default")
    return {"id": item_id}


@get("/boom", sync_to_thread=False)
def boom() -> None:
    raise RuntimeError("password=hunter2 at postgresql://secret@db/x")


@contextlib.asynccontextmanager
async def _serve(app: Litestar) -> AsyncIterator[httpx.AsyncClient]:
    """The app with its lifespan, in this event loop (where the test's clients live)."""
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        yield client


@pytest.fixture
async def db(settings: Settings) -> AsyncIterator[Database]:
    database = Database(settings.database)
    yield database
    await database.dispose()


@pytest.fixture
async def nats_client(settings: Settings) -> AsyncIterator[NatsClient]:
    client = await nats.connect(settings.nats.url)
    yield client
    await client.close()


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = create_redis(settings.redis)
    yield client
    await client.aclose()


@pytest.fixture
def log_lines() -> Iterator[io.StringIO]:
    """Everything logged during the test, as JSON lines."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("svc-test"))
    root = logging.getLogger()
    previous = root.level
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    yield stream
    root.removeHandler(handler)
    root.setLevel(previous)


@pytest.fixture
def spans() -> InMemorySpanExporter:
    return InMemorySpanExporter()


def _app(settings: Settings, spans: InMemorySpanExporter, **options: Any) -> Litestar:
    return create_service_app(
        "svc-test",
        settings,
        route_handlers=[item, boom],
        span_exporters=[spans],
        configure_logs=False,
        **options,
    )


async def test_health(settings: Settings, spans: InMemorySpanExporter) -> None:
    async with _serve(_app(settings, spans)) as client:
        response = await client.get("/health")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}


async def test_ready_with_real_dependencies(
    settings: Settings,
    spans: InMemorySpanExporter,
    db: Database,
    nats_client: NatsClient,
    redis: Redis,
) -> None:
    readiness = {
        **database_checks(db),
        "nats": nats_check(nats_client),
        "redis": redis_check(lambda: redis),
    }
    async with _serve(_app(settings, spans, readiness=readiness)) as client:
        response = await client.get("/ready")

    assert response.status_code == 200, response.text
    assert response.json() == {
        "status": "ok",
        "checks": {
            "postgres:default": {"status": "ok"},
            "postgres:pod-b": {"status": "ok"},
            "nats": {"status": "ok"},
            "redis": {"status": "ok"},
        },
    }


async def test_ready_503_when_one_dependency_is_down(
    settings: Settings, spans: InMemorySpanExporter, db: Database, nats_client: NatsClient
) -> None:
    port = _dead_port()
    dead_settings = settings.redis.model_copy(update={"url": f"redis://127.0.0.1:{port}/0"})
    dead_redis = create_redis(dead_settings)
    readiness = {
        **database_checks(db),
        "nats": nats_check(nats_client),
        "redis": redis_check(dead_redis),
    }
    try:
        async with _serve(_app(settings, spans, readiness=readiness)) as client:
            response = await client.get("/ready")
    finally:
        await dead_redis.aclose()

    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unavailable"
    assert body["checks"]["redis"]["status"] == "error"
    assert body["checks"]["nats"] == {"status": "ok"}
    assert body["checks"]["postgres:default"] == {"status": "ok"}
    # Never an address, URL or driver message in the body.
    assert str(port) not in response.text
    assert "127.0.0.1" not in response.text
    assert "redis://" not in response.text


async def test_a_degrading_dependency_down_keeps_the_service_in_rotation(
    settings: Settings, spans: InMemorySpanExporter, db: Database, nats_client: NatsClient
) -> None:
    dead_settings = settings.redis.model_copy(update={"url": f"redis://127.0.0.1:{_dead_port()}/0"})
    dead_redis = create_redis(dead_settings)
    readiness = {
        **database_checks(db),
        "nats": nats_check(nats_client),
        "redis": redis_check(dead_redis),
    }
    app = _app(settings, spans, readiness=readiness, degrading=frozenset({"redis", "nats"}))
    try:
        async with _serve(app) as client:
            ready = await client.get("/ready")
            health = await client.get("/health")
    finally:
        await dead_redis.aclose()
    assert ready.status_code == 200
    assert ready.json()["status"] == "degraded"
    assert ready.json()["checks"]["redis"]["status"] == "error"
    assert health.json() == {"status": "ok", "degraded": ["redis"]}


async def test_ready_503_for_a_dead_database_and_a_stuck_check(
    settings: Settings, spans: InMemorySpanExporter
) -> None:
    dead = Database(
        settings.database.model_copy(
            update={
                "url": f"postgresql+asyncpg://postgres@127.0.0.1:{_dead_port()}/x",
                "pod_urls": {},
            }
        )
    )

    async def stuck() -> None:
        await asyncio.sleep(30)

    readiness = {**database_checks(dead), "stuck": stuck}
    app = _app(settings, spans, readiness=readiness, readiness_timeout_seconds=0.3)
    try:
        async with _serve(app) as client:
            response = await client.get("/ready")
    finally:
        await dead.dispose()

    assert response.status_code == 503
    checks = response.json()["checks"]
    assert checks["postgres:default"]["status"] == "error"
    assert checks["stuck"] == {"status": "error", "error": "timeout"}
    assert "postgresql" not in response.text


async def test_ready_reports_a_client_not_started_yet(
    settings: Settings, spans: InMemorySpanExporter
) -> None:
    app = _app(settings, spans, readiness={"nats": nats_check(lambda: None)})
    async with _serve(app) as client:
        response = await client.get("/ready")
    assert response.status_code == 503
    assert response.json()["checks"]["nats"] == {"status": "error", "error": "ConnectionError"}


async def test_metrics_use_route_templates_and_labels(
    settings: Settings, spans: InMemorySpanExporter
) -> None:
    async with _serve(_app(settings, spans)) as client:
        assert (await client.get("/items/42")).status_code == 200
        assert (await client.get("/items/43")).status_code == 200
        assert (await client.get("/no/such/path")).status_code == 404
        metrics = await client.get("/metrics")

    assert metrics.status_code == 200
    assert metrics.headers["content-type"].startswith("text/plain")
    text = metrics.text
    assert (
        'svc_test_http_requests_total{method="GET",pod="default",'
        'route="/items/{item_id}",status="200",territory="dk"} 2.0'
    ) in text
    assert re.search(
        r'svc_test_http_requests_total\{method="GET",pod="",route="unmatched",status="404",'
        r'territory=""\} 1\.0',
        text,
    )
    assert re.search(
        r'svc_test_http_request_duration_seconds_count\{method="GET",pod="default",'
        r'route="/items/\{item_id\}",territory="dk"\} 2\.0',
        text,
    )
    assert "/items/42" not in text
    assert "/no/such/path" not in text


async def test_server_span_continues_the_incoming_trace(
    settings: Settings, spans: InMemorySpanExporter, log_lines: io.StringIO
) -> None:
    async with _serve(_app(settings, spans)) as client:
        response = await client.get(
            "/items/7?token=should-not-be-logged", headers={"traceparent": TRACEPARENT}
        )
    assert response.status_code == 200

    (span,) = [s for s in spans.get_finished_spans() if s.name == "GET /items/{item_id}"]
    assert format(span.context.trace_id, "032x") == TRACE_ID
    assert span.parent is not None
    assert format(span.parent.span_id, "016x") == PARENT_SPAN_ID
    assert span.attributes is not None
    assert span.attributes["http.route"] == "/items/{item_id}"
    assert span.attributes["http.response.status_code"] == 200
    assert span.attributes["unityplan.territory"] == "dk"

    access = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    (entry,) = [e for e in access if e["logger"] == "unityplan.access"]
    assert entry["trace_id"] == TRACE_ID
    assert entry["span_id"] == format(span.context.span_id, "016x")
    assert entry["service"] == "svc-test"
    assert entry["level"] == "INFO"
    assert entry["route"] == "/items/{item_id}"
    assert entry["path"] == "/items/7"
    assert entry["status"] == 200
    assert entry["duration_ms"] >= 0
    assert "should-not-be-logged" not in json.dumps(entry)


async def test_unhandled_error_is_a_bare_500_logged_with_its_trace(
    settings: Settings, spans: InMemorySpanExporter, log_lines: io.StringIO
) -> None:
    async with _serve(_app(settings, spans)) as client:
        response = await client.get("/boom", headers={"traceparent": TRACEPARENT})

    assert response.status_code == 500
    assert "hunter2" not in response.text
    assert "postgresql" not in response.text
    entries = [json.loads(line) for line in log_lines.getvalue().splitlines()]
    (error,) = [e for e in entries if e["level"] == "ERROR"]
    assert error["trace_id"] == TRACE_ID
    assert "RuntimeError" in error["exception"]
    (span,) = [s for s in spans.get_finished_spans() if s.name == "GET /boom"]
    assert span.status.status_code.name == "ERROR"


async def test_authenticated_requests_are_labelled_with_the_callers_territory(
    settings: Settings, spans: InMemorySpanExporter, redis: Redis
) -> None:
    keyring = KeyRing.from_settings(settings)
    sessions = SessionRegistry.from_settings(redis, settings)

    @get("/me")
    async def me(request: Request[Any, Any, Any]) -> dict[str, str | None]:
        principal = await authenticate(request.headers.get("authorization"), keyring, sessions)
        return {"user": principal.user_id if principal else None}

    token = keyring.sign(
        access_token_claims(
            user_id="u1", username="alice", territory_code="de", session_id="s1", roles=()
        ),
        ttl_seconds=60,
    )
    app = create_service_app("svc-auth", settings, route_handlers=[me], configure_logs=False)
    async with _serve(app) as client:
        assert (await client.get("/me", headers={"authorization": f"Bearer {token}"})).json() == {
            "user": "u1"
        }
        assert (await client.get("/me")).json() == {"user": None}
        text = (await client.get("/metrics")).text

    assert 'route="/me",status="200",territory="de"} 1.0' in text
    assert 'route="/me",status="200",territory=""} 1.0' in text
