"""OpenTelemetry tracing: a tracer provider per service and W3C trace-context propagation.

Spans are exported over OTLP/HTTP when OTEL_EXPORTER_OTLP_ENDPOINT is set; without it they are
still created (trace ids appear in logs) but go nowhere.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, MutableMapping, Sequence

from opentelemetry import propagate, trace
from opentelemetry.context import Context
from opentelemetry.sdk.resources import Resource
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import BatchSpanProcessor, SimpleSpanProcessor, SpanExporter

from core.config import Settings

logger = logging.getLogger(__name__)

_OTLP_TRACES_PATH = "/v1/traces"
# The W3C trace-context headers: they differ on every request and never change an answer.
TRACE_HEADERS = ("traceparent", "tracestate")


def _otlp_exporter(endpoint: str) -> SpanExporter:
    from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

    # The variable names the collector's base URL; the HTTP exporter wants the traces path.
    url = endpoint.rstrip("/")
    if not url.endswith(_OTLP_TRACES_PATH):
        url += _OTLP_TRACES_PATH
    return OTLPSpanExporter(endpoint=url)


def setup_tracing(
    service_name: str,
    settings: Settings,
    *,
    span_exporters: Sequence[SpanExporter] = (),
) -> TracerProvider:
    """The service's tracer provider; `span_exporters` are added as-is (tests pass in-memory ones).

    The first provider of the process also becomes the global one, which code that calls
    `trace.get_tracer()` (event consumers, the relay) uses.
    """
    provider = TracerProvider(
        resource=Resource.create(
            {"service.name": service_name, "deployment.environment": settings.app.env}
        )
    )
    endpoint = settings.observability.otlp_endpoint
    if endpoint:
        provider.add_span_processor(BatchSpanProcessor(_otlp_exporter(endpoint)))
    for exporter in span_exporters:
        provider.add_span_processor(SimpleSpanProcessor(exporter))
    if isinstance(trace.get_tracer_provider(), trace.ProxyTracerProvider):
        trace.set_tracer_provider(provider)
    else:
        logger.debug("a global tracer provider exists; %s keeps its own", service_name)
    return provider


def inject_headers(headers: MutableMapping[str, str], context: Context | None = None) -> None:
    """Add `traceparent` (and `tracestate`) of the current span to outgoing HTTP or NATS headers."""
    propagate.inject(headers, context=context)


def extract_context(headers: Mapping[str, str]) -> Context:
    """The remote parent context carried by incoming headers (empty context when none)."""
    return propagate.extract(headers)


def current_trace_ids() -> tuple[str, str] | None:
    """(trace_id, span_id) of the current span as hex, or None outside a recorded span."""
    context = trace.get_current_span().get_span_context()
    if not context.is_valid:
        return None
    return format(context.trace_id, "032x"), format(context.span_id, "016x")
