"""Tracing set-up and W3C propagation over HTTP/NATS-style header maps."""

from __future__ import annotations

from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core.config import Settings
from core.observability import (
    current_trace_ids,
    extract_context,
    inject_headers,
    setup_tracing,
)


def test_spans_reach_the_test_exporter_with_the_service_name(settings: Settings) -> None:
    exporter = InMemorySpanExporter()
    provider = setup_tracing("auth", settings, span_exporters=[exporter])
    with provider.get_tracer("test").start_as_current_span("login"):
        pass
    (span,) = exporter.get_finished_spans()
    assert span.name == "login"
    assert span.resource.attributes["service.name"] == "auth"


def test_no_otlp_exporter_without_an_endpoint(settings: Settings) -> None:
    provider = setup_tracing("auth", settings.replace(OTEL_EXPORTER_OTLP_ENDPOINT=""))
    # Reaching into the SDK is the only way to see which processors a provider has.
    processors = provider._active_span_processor._span_processors
    assert processors == ()


def test_otlp_exporter_when_an_endpoint_is_set(settings: Settings) -> None:
    configured = settings.replace(OTEL_EXPORTER_OTLP_ENDPOINT="http://127.0.0.1:4318")
    provider = setup_tracing("auth", configured)
    (processor,) = provider._active_span_processor._span_processors
    exporter = processor.span_exporter  # type: ignore[attr-defined]
    assert type(exporter).__name__ == "OTLPSpanExporter"
    assert exporter._endpoint == "http://127.0.0.1:4318/v1/traces"
    provider.shutdown()


def test_headers_carry_the_trace_across_a_hop(settings: Settings) -> None:
    exporter = InMemorySpanExporter()
    tracer = setup_tracing("router", settings, span_exporters=[exporter]).get_tracer("test")
    headers: dict[str, str] = {"content-type": "application/json"}
    with tracer.start_as_current_span("client") as client_span:
        inject_headers(headers)
        ids = current_trace_ids()
    client_context = client_span.get_span_context()
    assert headers["traceparent"].startswith(f"00-{client_context.trace_id:032x}-")
    assert ids == (f"{client_context.trace_id:032x}", f"{client_context.span_id:016x}")

    with tracer.start_as_current_span("server", context=extract_context(headers)) as server:
        pass
    assert server.get_span_context().trace_id == client_context.trace_id
    assert server.parent is not None
    assert server.parent.span_id == client_context.span_id
    assert current_trace_ids() is None


def test_extract_without_headers_starts_a_new_trace(settings: Settings) -> None:
    tracer = setup_tracing("router", settings).get_tracer("test")
    with tracer.start_as_current_span("root", context=extract_context({})) as span:
        pass
    assert span.parent is None
