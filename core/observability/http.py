"""Per-request telemetry for every service: a server span, the RED metrics and an access log line.

It wraps the whole ASGI handler (outside routing), so unmatched paths and failures are counted
too. Handlers that know the territory or pod of a request say so with `label_request`.
"""

from __future__ import annotations

import logging
import time
from contextvars import ContextVar
from dataclasses import dataclass

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send
from opentelemetry.trace import SpanKind, Status, StatusCode, Tracer

from core.observability.metrics import UNMATCHED_ROUTE, ServiceMetrics
from core.observability.tracing import extract_context

access_log = logging.getLogger("unityplan.access")

# Probes and scrapes arrive every few seconds; their access lines would drown the rest.
QUIET_ROUTES = frozenset({"/health", "/ready", "/metrics"})


@dataclass
class RequestLabels:
    """Bounded labels of the current request, filled in by whoever learns them."""

    territory: str = ""
    pod: str = ""
    user_id: str = ""  # an opaque id for spans only: never a metrics label


_current_labels: ContextVar[RequestLabels | None] = ContextVar("request_labels", default=None)


def label_request(
    *, territory: str | None = None, pod: str | None = None, user_id: str | None = None
) -> None:
    """Record the territory, pod and/or caller of the current request (no-op outside one)."""
    labels = _current_labels.get()
    if labels is None:
        return
    if territory is not None:
        labels.territory = territory
    if pod is not None:
        labels.pod = pod
    if user_id is not None:
        labels.user_id = user_id


def _headers(scope: Scope) -> dict[str, str]:
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers", [])
    }


class RequestTelemetry:
    """ASGI wrapper: server span from the incoming trace context, metrics, JSON access log."""

    def __init__(self, app: ASGIApp, *, metrics: ServiceMetrics, tracer: Tracer) -> None:
        self.app = app
        self.metrics = metrics
        self.tracer = tracer

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != ScopeType.HTTP:
            await self.app(scope, receive, send)
            return
        method = str(scope.get("method", "GET"))
        status = 500  # unless the app sends a response start
        labels = RequestLabels()
        token = _current_labels.set(labels)
        started = time.perf_counter()

        async def send_and_record(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])
            await send(message)

        parent = extract_context(_headers(scope))
        with self.tracer.start_as_current_span(
            f"{method} {scope['path']}", context=parent, kind=SpanKind.SERVER
        ) as span:
            try:
                await self.app(scope, receive, send_and_record)
            finally:
                seconds = time.perf_counter() - started
                # Set by the router once the path matched; raw paths never become labels.
                route = scope.get("path_template") or UNMATCHED_ROUTE
                span.update_name(f"{method} {route}")
                span.set_attribute("http.request.method", method)
                span.set_attribute("http.route", route)
                span.set_attribute("url.path", scope["path"])
                span.set_attribute("http.response.status_code", status)
                if labels.territory:
                    span.set_attribute("territory", labels.territory)
                    span.set_attribute("unityplan.territory", labels.territory)  # earlier name
                if labels.user_id:
                    span.set_attribute("user.id", labels.user_id)
                if status >= 500:
                    span.set_status(Status(StatusCode.ERROR))
                self.metrics.observe_request(
                    method=method,
                    route=route,
                    status=status,
                    seconds=seconds,
                    pod=labels.pod,
                    territory=labels.territory,
                )
                access_log.log(
                    logging.DEBUG if route in QUIET_ROUTES else logging.INFO,
                    "%s %s %s",
                    method,
                    route,
                    status,
                    extra={
                        "method": method,
                        "path": scope["path"],  # without the query string, which may hold tokens
                        "route": route,
                        "status": status,
                        "duration_ms": round(seconds * 1000, 2),
                        "territory": labels.territory or None,
                    },
                )
                _current_labels.reset(token)
