"""Structured logs: JSON lines with trace ids, redacted secrets, console format, reconfiguration."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest
from opentelemetry.sdk.trace import TracerProvider

from core.config import ObservabilitySettings
from core.observability import ConsoleFormatter, JsonFormatter, configure_logging


@pytest.fixture
def logger() -> Iterator[logging.Logger]:
    test_logger = logging.getLogger("unityplan.test.logging")
    test_logger.setLevel(logging.DEBUG)
    test_logger.propagate = False
    yield test_logger
    test_logger.handlers.clear()
    test_logger.propagate = True


def _capture(logger: logging.Logger, formatter: logging.Formatter) -> io.StringIO:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(formatter)
    logger.addHandler(handler)
    return stream


def test_json_line_has_the_fields_and_extras(logger: logging.Logger) -> None:
    stream = _capture(logger, JsonFormatter("auth"))
    logger.info("user %s logged in", "u1", extra={"territory": "dk", "attempt": 2})

    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "INFO"
    assert entry["logger"] == "unityplan.test.logging"
    assert entry["message"] == "user u1 logged in"
    assert entry["service"] == "auth"
    assert entry["territory"] == "dk"
    assert entry["attempt"] == 2
    assert entry["time"].endswith("+00:00")
    assert "trace_id" not in entry  # no span, no ids


def test_json_line_carries_the_current_trace(logger: logging.Logger) -> None:
    stream = _capture(logger, JsonFormatter("auth"))
    tracer = TracerProvider().get_tracer("test")
    with tracer.start_as_current_span("work") as span:
        logger.warning("inside a span")
    entry = json.loads(stream.getvalue())
    assert entry["trace_id"] == format(span.get_span_context().trace_id, "032x")
    assert entry["span_id"] == format(span.get_span_context().span_id, "016x")


def test_secret_extras_are_redacted(logger: logging.Logger) -> None:
    stream = _capture(logger, JsonFormatter("auth"))
    logger.info(
        "registered",
        extra={
            "password": "hunter2",
            "refresh_token": "r-123",
            "Authorization": "Bearer abc",
            "totp_code": "123456",
            "username": "alice",
        },
    )
    entry = json.loads(stream.getvalue())
    text = stream.getvalue()
    for secret in ("hunter2", "r-123", "Bearer abc", "123456"):
        assert secret not in text
    assert entry["password"] == "[redacted]"
    assert entry["username"] == "alice"


def test_exceptions_are_one_line_of_json(logger: logging.Logger) -> None:
    stream = _capture(logger, JsonFormatter("auth"))
    try:
        raise ValueError("broken")
    except ValueError:
        logger.exception("failed")
    (line,) = stream.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["level"] == "ERROR"
    assert "ValueError: broken" in entry["exception"]


def test_console_format(logger: logging.Logger) -> None:
    stream = _capture(logger, ConsoleFormatter("user"))
    logger.info("profile updated", extra={"user_id": "u1", "token": "t-1"})
    line = stream.getvalue()
    assert "INFO" in line
    assert "user unityplan.test.logging: profile updated" in line
    assert "user_id=u1" in line
    assert "t-1" not in line


def test_configure_logging_replaces_only_its_own_handler() -> None:
    root = logging.getLogger()
    before = list(root.handlers)
    level = root.level
    stream = io.StringIO()
    try:
        configure_logging("auth", ObservabilitySettings(), stream=io.StringIO())
        handler = configure_logging(
            "auth",
            ObservabilitySettings.model_validate({"LOG_LEVEL": "WARNING", "LOG_FORMAT": "json"}),
            stream=stream,
        )
        assert [h for h in root.handlers if h not in before] == [handler]
        assert root.level == logging.WARNING
        logging.getLogger("unityplan.test.configured").warning("visible")
        logging.getLogger("unityplan.test.configured").info("filtered")
        lines = stream.getvalue().splitlines()
        assert [json.loads(line)["message"] for line in lines] == ["visible"]
        assert logging.getLogger("httpx").level >= logging.WARNING
    finally:
        for extra in [h for h in root.handlers if h not in before]:
            root.removeHandler(extra)
        root.setLevel(level)
