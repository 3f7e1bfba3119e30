"""Process logging: one JSON object per line (or readable console lines), with the trace ids.

Fields passed with `extra=` are included; any whose name suggests a secret is redacted, so a
careless `extra={"password": ...}` never reaches the log. Database errors (in a traceback or
as a message argument) are written without their driver message, which may quote the values
of the statement (passwords, tokens, personal data): their type, SQLSTATE and statement only.
"""

from __future__ import annotations

import logging
import re
import sys
import traceback
from datetime import UTC, datetime
from types import TracebackType
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


ExcInfo = tuple[type[BaseException], BaseException, TracebackType | None]


def _is_database_error(exc: BaseException) -> bool:
    module = type(exc).__module__
    return module.startswith(("asyncpg", "sqlalchemy.dialects")) or (
        module.startswith("sqlalchemy") and hasattr(exc, "statement")
    )


def safe_exception_message(exc: BaseException) -> str:
    """`str(exc)`, except for database errors: their type, SQLSTATE and statement only."""
    if not _is_database_error(exc):
        return str(exc)
    found: BaseException | None = exc
    sqlstate = None
    while found is not None and sqlstate is None:
        sqlstate = getattr(found, "sqlstate", None) or getattr(found, "pgcode", None)
        found = getattr(found, "orig", None) or found.__cause__
    statement = getattr(exc, "statement", None)
    summary = f"database error (SQLSTATE {sqlstate or 'unknown'}; values withheld)"
    if isinstance(statement, str):
        summary += f" in: {' '.join(statement.split())[:500]}"
    return summary


def safe_traceback(exc_info: ExcInfo) -> str:
    """The traceback as Python prints it, chained causes included, with database errors'
    messages replaced by `safe_exception_message`, and those of their causes (a driver's
    encoding error quotes the value it could not encode) withheld."""
    return "".join(_traceback_lines(exc_info[1], set(), withhold=False)).rstrip("\n")


def _traceback_lines(exc: BaseException, seen: set[int], *, withhold: bool) -> list[str]:
    seen.add(id(exc))
    database = _is_database_error(exc)
    lines: list[str] = []
    cause, context = exc.__cause__, exc.__context__
    if cause is not None and id(cause) not in seen:
        lines += _traceback_lines(cause, seen, withhold=withhold or database)
        lines.append("\nThe above exception was the direct cause of the following exception:\n\n")
    elif context is not None and not exc.__suppress_context__ and id(context) not in seen:
        lines += _traceback_lines(context, seen, withhold=withhold or database)
        lines.append("\nDuring handling of the above exception, another exception occurred:\n\n")
    if exc.__traceback__ is not None:
        lines.append("Traceback (most recent call last):\n")
        lines += traceback.format_tb(exc.__traceback__)
    kind = type(exc)
    name = kind.__qualname__
    if kind.__module__ != "builtins":
        name = f"{kind.__module__}.{name}"
    if database:
        message = safe_exception_message(exc)
    elif withhold:
        message = "(message withheld: it led to a database error and may quote values)"
    else:
        message = str(exc)
    lines.append(f"{name}: {message}\n" if message else f"{name}\n")
    return lines


def _message(record: logging.LogRecord) -> str:
    """`record.getMessage()`, with database errors among the arguments made safe."""
    args = record.args
    if isinstance(args, tuple) and any(
        isinstance(arg, BaseException) and _is_database_error(arg) for arg in args
    ):
        safe = tuple(
            safe_exception_message(arg) if isinstance(arg, BaseException) else arg for arg in args
        )
        return str(record.msg) % safe
    return record.getMessage()


def _extra_fields(record: logging.LogRecord) -> dict[str, Any]:
    return {
        name: REDACTED if _SECRET_NAME.search(name) else value
        for name, value in vars(record).items()
        if name not in _RECORD_FIELDS and not name.startswith("_")
    }


class _SafeFormatter(logging.Formatter):
    def formatException(self, ei: Any) -> str:
        if ei and ei[1] is not None:
            return safe_traceback(ei)
        return super().formatException(ei)


class JsonFormatter(_SafeFormatter):
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
            "message": _message(record),
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


class ConsoleFormatter(_SafeFormatter):
    """`12:00:00.123 INFO  auth core.x: message key=value [trace_id]` for people at a terminal."""

    def __init__(self, service_name: str) -> None:
        super().__init__()
        self.service_name = service_name

    def format(self, record: logging.LogRecord) -> str:
        when = datetime.fromtimestamp(record.created, tz=UTC).strftime("%H:%M:%S.%f")[:-3]
        extras = " ".join(f"{key}={value}" for key, value in _extra_fields(record).items())
        line = f"{when} {record.levelname:<7} {self.service_name} {record.name}: "
        line += _message(record)
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
