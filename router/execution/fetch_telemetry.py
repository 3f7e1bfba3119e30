"""Spans and metrics of the router's subgraph fetches.

The router's telemetry (see `router.server.http_telemetry`) installs a `FetchObserver` for each
request in a context variable, so the subgraph client needs no reference to it: without one (a
unit test, a benchmark) fetches still get spans from the global tracer, and no metrics.
"""

from __future__ import annotations

import time
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from dataclasses import dataclass, field
from typing import Any

from opentelemetry import propagate, trace
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer
from prometheus_client import CollectorRegistry, Counter, Histogram

from core.observability.tracing import TRACE_HEADERS

# A subgraph fetch is one hop of a request: the same range as request latencies.
_FETCH_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

OK = "ok"
GRAPHQL_ERRORS = "GRAPHQL_ERRORS"


class FetchObserver:
    """The router's tracer and its per-subgraph fetch metrics."""

    def __init__(self, registry: CollectorRegistry, tracer: Tracer) -> None:
        self.tracer = tracer
        self.duration = Histogram(
            "router_subgraph_request_duration_seconds",
            "Time from sending a subgraph request to its decoded response",
            ["subgraph"],
            buckets=_FETCH_BUCKETS,
            registry=registry,
        )
        self.requests = Counter(
            "router_subgraph_requests",
            "Subgraph requests by outcome: ok, GRAPHQL_ERRORS, or the failure's code",
            ["subgraph", "outcome"],
            registry=registry,
        )


current_observer: ContextVar[FetchObserver | None] = ContextVar("fetch_observer", default=None)


@dataclass
class Fetch:
    """One subgraph fetch in progress: the headers to send (with its trace context)."""

    headers: dict[str, str]
    outcome: str = OK
    attributes: dict[str, Any] = field(default_factory=dict)

    def answered(self, body: Mapping[str, Any]) -> None:
        if body.get("errors"):
            self.outcome = GRAPHQL_ERRORS


@contextmanager
def subgraph_fetch(subgraph: str, headers: Mapping[str, str]) -> Iterator[Fetch]:
    """A client span around one subgraph request; the request carries its trace context
    (replacing the caller's forwarded one, which is the span's ancestor anyway)."""
    observer = current_observer.get()
    tracer = observer.tracer if observer is not None else trace.get_tracer("unityplan.router")
    started = time.perf_counter()
    with tracer.start_as_current_span(
        f"fetch {subgraph}",
        kind=SpanKind.CLIENT,
        attributes={"graphql.subgraph.name": subgraph},
        record_exception=False,
    ) as span:
        outgoing = {k: v for k, v in headers.items() if k not in TRACE_HEADERS}
        propagate.inject(outgoing)
        fetch = Fetch(outgoing)
        try:
            yield fetch
        except Exception as exc:
            fetch.outcome = str(getattr(exc, "code", None) or type(exc).__name__)
            span.set_status(Status(StatusCode.ERROR, fetch.outcome))
            raise
        finally:
            span.set_attribute("unityplan.outcome", fetch.outcome)
            if observer is not None:
                observer.duration.labels(subgraph).observe(time.perf_counter() - started)
                observer.requests.labels(subgraph, fetch.outcome).inc()


@contextmanager
def plan_execution(kind: str, name: str | None, fetches: int) -> Iterator[None]:
    """The span of running one query plan: the parent of its subgraph fetches."""
    observer = current_observer.get()
    tracer = observer.tracer if observer is not None else trace.get_tracer("unityplan.router")
    attributes: dict[str, Any] = {"graphql.operation.type": kind, "router.plan.fetches": fetches}
    if name:
        attributes["graphql.operation.name"] = name
    with tracer.start_as_current_span("execute plan", attributes=attributes):
        yield
