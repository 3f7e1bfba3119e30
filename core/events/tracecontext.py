"""W3C trace context carried with events: captured when an event is written, restored when it
is consumed, so one trace spans the request, the relay's publish and the consumer."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import propagate
from opentelemetry.context import Context

TRACE_HEADERS = ("traceparent", "tracestate")


def capture_trace_context() -> dict[str, str]:
    """The current trace context as message headers (empty outside a trace)."""
    carrier: dict[str, str] = {}
    propagate.inject(carrier)
    return {name: carrier[name] for name in TRACE_HEADERS if name in carrier}


def trace_headers(headers: Mapping[str, str] | None) -> dict[str, str]:
    """Only the trace-context entries of `headers`."""
    return {name: headers[name] for name in TRACE_HEADERS if headers and name in headers}


def restore_trace_context(headers: Mapping[str, str] | None) -> Context:
    """The context whose parent is the span that wrote the event."""
    return propagate.extract(trace_headers(headers))
