"""Process logging: one JSON object per line (or readable console lines), with the trace ids.

Fields passed with `extra=` are included; any whose name suggests a secret is redacted, so a
careless `extra={"password": ...}` never reaches the log.
"""

from __future__ import annotations

import logging
import re
import sys
from datetime import UTC, datetime
from typing import Any, TextIO

import orjson

from core.config import ObservabilitySettings
from core.observability.tracing import current_trace_ids

REDACTED = "[redacted]"
_SECRET_NAME = re.compile(
    r"pass(word)?|secret|token|authorization|cookie|api[_-]?key|private|credential|totp|otp",
    re.IGNORECASE,
)
_CHATTY_LOGGERS = ("httpx", "httpcore")
# Attributes every LogRecord has; anything else on a record came from `extra=`.
_RECORD_FIELDS = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
    "taskName",
}


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        name: REDACTED if _SECRET_NAME.search(name) else value
        for name, value in vars(record).items()
        if name not in _RECORD_FIELDS and not name.startswith("_")
    }


class JsonFormatter(logging.Formatter):
    """time, level, logger, message, service, trace_id, span_id, then the record's extra fields."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, tz=UTC)
        entry: dict[str, Any] = {
            "time": when.isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "service": self.service_name,
        }
        ids = current_trace_ids()
        if ids is not None:
            entry["trace_id"], entry["span_id"] = ids
        for name, value in _extra_fields(record).items():
            entry.setdefault(name, value)
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return orjson.dumps(entry, default=str).decode("utf-8")


class ConsoleFormatter(logging.Formatter):
    """`12:00:00.123 INFO  auth core.x: message key=value [trace_id]` for people at a terminal."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, tz=UTC).strftime("%H:%M:%S.%f")[:-3]
        extras = " ".join(f"{key}={value}" for key, value in _extra_fields(record).items())
        line = f"{when} {record.levelname:<7} {self.service_name} {record.name}: "
        line += record.getMessage()
        if extras:
            line += f" {extras}"
        ids = current_trace_ids()
        if ids is not None:
            line += f" [{ids[0]}]"
        if record.exc_info:
            line += "\n" + self.formatException(record.exc_info)
        return line


class _ServiceHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler this module installed, so reconfiguring replaces only it."""


def configure_logging(
    service_name: str, settings: ObservabilitySettings, *, stream: TextIO | None = None
) -> logging.Handler:
    """Send the root logger to `stream` (stderr) in LOG_FORMAT at LOG_LEVEL; returns the handler.

    Handlers installed by others (a test runner's capture, for one) are left in place.
    """
    root = logging.getLogger()
    for handler in [h for h in root.handlers if isinstance(h, _ServiceHandler)]:
        root.removeHandler(handler)
    handler = _ServiceHandler(stream or sys.stderr)
    formatter: logging.Formatter = (
        JsonFormatter(service_name)
        if settings.log_format == "json"
        else ConsoleFormatter(service_name)
    )
    handler.setFormatter(formatter)
    root.addHandler(handler)
    root.setLevel(settings.log_level)
    # HTTP client libraries log every URL they call, query strings included.
    for chatty in _CHATTY_LOGGERS:
        logging.getLogger(chatty).setLevel(max(logging.WARNING, root.level))
    return handler
