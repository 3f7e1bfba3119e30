"""W3C trace context carried with events: captured when an event is written, restored when it
is consumed, so one trace spans the request, the relay's publish and the consumer."""

from __future__ import annotations

from collections.abc import Mapping

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.trace import Span, SpanKind, Status, StatusCode

from core.observability.tracing import TRACE_HEADERS


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


def start_publish_span(subject: str, headers: Mapping[str, str] | None) -> Span | None:
    """A producer span for publishing an event written inside a trace (None otherwise): a child
    of the span that wrote it, so the publish shows in the request's trace."""
    if not trace_headers(headers):
        return None
    return trace.get_tracer("core.events").start_span(
        f"{subject} publish",
        context=restore_trace_context(headers),
        kind=SpanKind.PRODUCER,
        attributes={"messaging.system": "nats", "messaging.destination.name": subject},
    )


def publish_headers(span: Span | None, headers: Mapping[str, str] | None) -> dict[str, str]:
    """The trace headers to send: the publish span's, so consumers continue from it."""
    if span is None:
        return trace_headers(headers)
    carrier: dict[str, str] = {}
    propagate.inject(carrier, context=trace.set_span_in_context(span))
    return {name: carrier[name] for name in TRACE_HEADERS if name in carrier}


def end_publish_span(span: Span | None, failure: Exception | None) -> None:
    if span is None:
        return
    if failure is not None:
        span.set_status(Status(StatusCode.ERROR, type(failure).__name__))
    span.end()
