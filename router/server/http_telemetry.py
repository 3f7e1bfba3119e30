"""The router's telemetry: the platform's request spans and RED metrics, `/metrics`, runtime
probes, plan-cache and subgraph-fetch metrics, and the count of active subscriptions.

Route labels are the router's few fixed paths; any other path is `unmatched`.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, MutableMapping
from typing import Any

from prometheus_client import Gauge
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily
from prometheus_client.registry import Collector

from core.config import Settings
from core.observability.http import RequestTelemetry
from core.observability.metrics import METRICS_CONTENT_TYPE, ServiceMetrics
from core.observability.runtime import EventLoopMonitor
from core.observability.tracing import setup_tracing
from router.execution.fetch_telemetry import FetchObserver, current_observer
from router.server.state import RouterState

SERVICE_NAME = "router"
ROUTES = frozenset({"/graphql", "/health", "/ready", "/metrics"})

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]
ASGI = Callable[[Scope, Receive, Send], Awaitable[None]]


class PlanCacheCollector(Collector):
    """Hits, misses and size of the plan cache of the supergraph in service (a reload starts
    a new cache, which Prometheus sees as a counter reset), and whether there is one."""

    def __init__(self, state: RouterState) -> None:
        self.state = state

    def collect(self) -> Iterator[CounterMetricFamily | GaugeMetricFamily]:
        gateway = self.state.gateway
        plans = gateway.plans if gateway is not None else None
        hits = CounterMetricFamily("router_plan_cache_hits", "Operations whose plan was cached")
        misses = CounterMetricFamily(
            "router_plan_cache_misses", "Operations parsed, validated and planned anew"
        )
        entries = GaugeMetricFamily("router_plan_cache_entries", "Plans held by the plan cache")
        hits.add_metric([], plans.hits if plans else 0)
        misses.add_metric([], plans.misses if plans else 0)
        entries.add_metric([], len(plans) if plans else 0)
        # The router's one dependency of its own: a supergraph to serve (as /ready says).
        ready = GaugeMetricFamily(
            "service_dependency_ready",
            "1 when the service's last check of the dependency passed, else 0",
            labels=["dependency"],
        )
        ready.add_metric(["supergraph"], 1 if gateway is not None else 0)
        yield from (hits, misses, entries, ready)


class RouterTelemetry:
    """Wraps the router's HTTP handler; `start`/`stop` belong in its lifespan."""

    def __init__(self, settings: Settings, state: RouterState, handler: ASGI) -> None:
        self.metrics = ServiceMetrics(SERVICE_NAME)
        self.tracer_provider = setup_tracing(SERVICE_NAME, settings)
        tracer = self.tracer_provider.get_tracer(f"unityplan.{SERVICE_NAME}")
        registry = self.metrics.registry
        registry.register(PlanCacheCollector(state))
        self.fetches = FetchObserver(registry, tracer)
        self.active_subscriptions = Gauge(
            "router_active_subscriptions",
            "Subscriptions the router is serving to clients right now",
            registry=registry,
        )
        self.loop_monitor = EventLoopMonitor(registry)
        self._handler = handler
        # RequestTelemetry is typed with Litestar's ASGI types; the router's are plain mappings.
        self._wrapped = RequestTelemetry(
            self._route,  # type: ignore[arg-type]
            metrics=self.metrics,
            tracer=tracer,
        )

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        await self._wrapped(scope, receive, send)  # type: ignore[arg-type]

    async def _route(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope["path"].rstrip("/") or "/"
        if path in ROUTES:
            scope["path_template"] = path
        if path == "/metrics":
            body = self.metrics.exposition()
            await send(
                {
                    "type": "http.response.start",
                    "status": 200,
                    "headers": [
                        (b"content-type", METRICS_CONTENT_TYPE.encode()),
                        (b"content-length", str(len(body)).encode()),
                    ],
                }
            )
            await send({"type": "http.response.body", "body": body})
            return
        token = current_observer.set(self.fetches)
        try:
            await self._handler(scope, receive, send)
        finally:
            current_observer.reset(token)

    def start(self) -> None:
        self.loop_monitor.start()

    async def stop(self) -> None:
        await self.loop_monitor.stop()
        self.tracer_provider.force_flush()
