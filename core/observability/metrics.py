"""Prometheus metrics of one service: its own registry and the RED metrics of its HTTP requests.

Label values stay bounded: `route` is the route template (`/users/{id}`), never the raw path;
`pod` and `territory` are empty when a request has none (Prometheus then treats them as absent).
"""

from __future__ import annotations

import re

from prometheus_client import (
    GC_COLLECTOR,
    PLATFORM_COLLECTOR,
    PROCESS_COLLECTOR,
    CollectorRegistry,
    Counter,
    Histogram,
    generate_latest,
)
from prometheus_client.exposition import CONTENT_TYPE_LATEST

METRICS_CONTENT_TYPE = CONTENT_TYPE_LATEST
UNMATCHED_ROUTE = "unmatched"

# Request latencies from a millisecond to beyond a typical client timeout.
_LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)


def metric_prefix(service_name: str) -> str:
    """`service_name` as a Prometheus metric-name prefix (`user-api` -> `user_api`)."""
    prefix = re.sub(r"[^a-zA-Z0-9_]", "_", service_name)
    return prefix if re.match(r"[a-zA-Z_]", prefix) else f"_{prefix}"


class ServiceMetrics:
    """The service's registry (other modules register their metrics on it too) and RED metrics."""

    def __init__(self, service_name: str) -> None:
        self.service_name = service_name
        self.registry = CollectorRegistry(auto_describe=True)
        # CPU, memory, file descriptors and GC of the process, as every exporter shows them.
        for collector in (PROCESS_COLLECTOR, PLATFORM_COLLECTOR, GC_COLLECTOR):
            self.registry.register(collector)
        prefix = metric_prefix(service_name)
        self.requests = Counter(
            f"{prefix}_http_requests",
            "HTTP requests served, by route template and status",
            ["method", "route", "status", "pod", "territory"],
            registry=self.registry,
        )
        self.duration = Histogram(
            f"{prefix}_http_request_duration_seconds",
            "Time to serve an HTTP request, by route template",
            ["method", "route", "pod", "territory"],
            buckets=_LATENCY_BUCKETS,
            registry=self.registry,
        )

    def observe_request(
        self,
        *,
        method: str,
        route: str,
        status: int,
        seconds: float,
        pod: str = "",
        territory: str = "",
    ) -> None:
        self.requests.labels(method, route, str(status), pod, territory).inc()
        self.duration.labels(method, route, pod, territory).observe(seconds)

    def exposition(self) -> bytes:
        """The registry in the Prometheus text format."""
        return generate_latest(self.registry)
