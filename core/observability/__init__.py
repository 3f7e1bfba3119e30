"""Observability every service shares: tracing, Prometheus metrics, structured logs."""

from core.observability.logging import (
    ConsoleFormatter,
    JsonFormatter,
    configure_logging,
)
from core.observability.metrics import METRICS_CONTENT_TYPE, ServiceMetrics
from core.observability.tracing import (
    current_trace_ids,
    extract_context,
    inject_headers,
    setup_tracing,
)

__all__ = [
    "METRICS_CONTENT_TYPE",
    "ConsoleFormatter",
    "JsonFormatter",
    "ServiceMetrics",
    "configure_logging",
    "current_trace_ids",
    "extract_context",
    "inject_headers",
    "setup_tracing",
]
