"""The Litestar app every UnityPlan service is built on: probes, metrics, tracing and access logs.

`create_service_app` adds `/health`, `/ready` and `/metrics`, a server span and RED metrics per
request, and logging of unexpected exceptions with their trace id; the service brings its routes.
A subgraph passes `router_only=True`: then only requests the router signed reach its routes.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

from litestar import Litestar, MediaType, Response, get
from litestar.di import Provide
from litestar.plugins import PluginProtocol
from litestar.types import ControllerRouterHandler, LifespanHook, Middleware, Scope
from opentelemetry.sdk.trace.export import SpanExporter
from prometheus_client import Counter

from core.config import Settings
from core.observability.health import DEFAULT_CHECK_TIMEOUT_SECONDS, Check, ReadinessGauge
from core.observability.http import RequestTelemetry
from core.observability.logging import configure_logging
from core.observability.metrics import METRICS_CONTENT_TYPE, ServiceMetrics
from core.observability.runtime import EventLoopMonitor
from core.observability.sql import instrument_sql
from core.observability.tracing import setup_tracing
from core.security.router_gate import TOO_LARGE_BODY, RouterOnly
from core.security.router_proof import ProofVerifier

logger = logging.getLogger("unityplan.service")
# Litestar's own default request body limit.
DEFAULT_MAX_BODY_BYTES = 10 * 1024 * 1024


def _probe_handlers(
    metrics: ServiceMetrics, readiness: ReadinessGauge
) -> list[ControllerRouterHandler]:
    @get("/health", include_in_schema=False, sync_to_thread=False, media_type=MediaType.JSON)
    def health() -> dict[str, Any]:
        """Alive: the process answers; `degraded` names dependencies the last probe found
        down that do not stop it serving (see /ready)."""
        if readiness.degraded:
            return {"status": "ok", "degraded": readiness.degraded}
        return {"status": "ok"}

    @get("/ready", include_in_schema=False, media_type=MediaType.JSON)
    async def ready() -> Response[dict[str, Any]]:
        """Can serve: every dependency it cannot answer without works. A degrading
        dependency down (NATS, Redis) reads `degraded` and stays in rotation: every replica
        shares it, and the service answers what it can with clear errors meanwhile."""
        ok, checks = await readiness.check()
        status = ("degraded" if readiness.degraded else "ok") if ok else "unavailable"
        return Response({"status": status, "checks": checks}, status_code=200 if ok else 503)

    @get("/metrics", include_in_schema=False, sync_to_thread=False)
    def prometheus() -> Response[bytes]:
        return Response(metrics.exposition(), media_type=METRICS_CONTENT_TYPE)

    return [health, ready, prometheus]


async def _log_unexpected(exc: Exception, scope: Scope) -> None:
    # Runs inside the request span, so the line carries the trace id; the client got a bare 500.
    status = getattr(exc, "status_code", 500)
    if status >= 500:
        logger.error(
            "unhandled error in %s %s", scope.get("method"), scope.get("path"), exc_info=exc
        )


def create_service_app(
    name: str,
    settings: Settings,
    *,
    route_handlers: Sequence[ControllerRouterHandler] = (),
    on_startup: Sequence[LifespanHook] = (),
    on_shutdown: Sequence[LifespanHook] = (),
    readiness: Mapping[str, Check] | None = None,
    degrading: frozenset[str] = frozenset(),
    middleware: Sequence[Middleware] = (),
    dependencies: Mapping[str, Provide] | None = None,
    plugins: Sequence[PluginProtocol] = (),
    span_exporters: Sequence[SpanExporter] = (),
    readiness_timeout_seconds: float = DEFAULT_CHECK_TIMEOUT_SECONDS,
    configure_logs: bool = True,
    router_only: bool = False,
    open_paths: Sequence[str] = (),
    max_body_bytes: int = DEFAULT_MAX_BODY_BYTES,
    too_large_body: bytes = TOO_LARGE_BODY,
) -> Litestar:
    """A Litestar app named `name` with the platform's probes and telemetry around `route_handlers`.

    `readiness` maps a dependency name to its check (see `core.observability.health` for
    PostgreSQL, NATS and Redis); checks may reach clients created in `on_startup`. The names
    in `degrading` only degrade the service when down (/ready stays 200, says `degraded`).
    `app.state` holds `settings`, `metrics` (register service metrics on `metrics.registry`)
    and `tracer_provider`. With `router_only`, every request but the probes and `open_paths`
    (exact, or prefixes ending in "/") needs the router's proof (SUBGRAPH_SIGNING_KEYS), else
    401; bodies are read whole to check it, up to `max_body_bytes` (then 413 with
    `too_large_body`).
    """
    # Before anything starts: production refuses to run without the router's keys.
    verifier = ProofVerifier.from_settings(settings) if router_only else None
    metrics = ServiceMetrics(name)
    tracer_provider = setup_tracing(name, settings, span_exporters=span_exporters)
    instrument_sql()
    loop_monitor = EventLoopMonitor(metrics.registry)
    dependencies_ready = ReadinessGauge(
        metrics.registry,
        readiness or {},
        timeout_seconds=readiness_timeout_seconds,
        degrading=degrading,
    )

    def start_logging() -> None:
        if configure_logs:
            configure_logging(name, settings.observability)
        loop_monitor.start()

    def start_readiness_probe() -> None:
        # After the service's own start-up hooks: checks may reach the clients they create.
        dependencies_ready.start()

    async def stop_runtime_probes() -> None:
        await dependencies_ready.stop()
        await loop_monitor.stop()
        tracer_provider.force_flush()

    app = Litestar(
        route_handlers=[
            *_probe_handlers(metrics, dependencies_ready),
            *route_handlers,
        ],
        on_startup=[start_logging, *on_startup, start_readiness_probe],
        on_shutdown=[*on_shutdown, stop_runtime_probes],
        middleware=list(middleware),
        dependencies=dict(dependencies or {}),
        plugins=list(plugins),
        after_exception=[_log_unexpected],
        # Logging is configured by `configure_logging`, not by Litestar's own root-logger setup.
        logging_config=None,
        # The services speak GraphQL; no generated REST schema is published.
        openapi_config=None,
        debug=False,
    )
    app.state.settings = settings
    app.state.metrics = metrics
    app.state.tracer_provider = tracer_provider
    handler = app.asgi_handler
    if verifier is not None:
        refusals = Counter(
            "router_proof_refusals",
            "Requests refused for want of a valid router proof, by transport (http, websocket)",
            ["transport"],
            registry=metrics.registry,
        )
        handler = RouterOnly(
            handler,
            verifier,
            open_paths=open_paths,
            max_body_bytes=max_body_bytes,
            too_large_body=too_large_body,
            on_refused=lambda transport: refusals.labels(transport).inc(),
        )
    # Wrap the whole ASGI handler, not only matched routes, so 404s and refusals are measured.
    app.asgi_handler = RequestTelemetry(
        handler, metrics=metrics, tracer=tracer_provider.get_tracer(f"unityplan.{name}")
    )
    return app
