"""Client spans for SQL statements, from SQLAlchemy's cursor events on every engine.

Statements run inside a traced request or event get a child span each; statements of
background loops outside any trace (the relay's polling) record nothing, so they never flood
the tracing backend with one-span traces. The statement text is parameterized: no values.
"""

from __future__ import annotations

from typing import Any

from opentelemetry import trace
from opentelemetry.trace import Span, SpanKind, Status, StatusCode
from sqlalchemy import event
from sqlalchemy.engine import Engine

_SPAN_ATTRIBUTE = "_unityplan_sql_span"
_STATEMENT_MAX = 2000
_installed = False


def _operation(statement: str) -> str:
    words = statement.lstrip().split(None, 1)
    return words[0].upper() if words else "SQL"


def _before_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    if context is None or not trace.get_current_span().is_recording():
        return
    span = trace.get_tracer("unityplan.sql").start_span(
        _operation(statement),
        kind=SpanKind.CLIENT,
        attributes={
            "db.system": "postgresql",
            "db.operation.name": _operation(statement),
            "db.query.text": statement[:_STATEMENT_MAX],
        },
    )
    setattr(context, _SPAN_ATTRIBUTE, span)


def _after_execute(
    conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool
) -> None:
    span: Span | None = getattr(context, _SPAN_ATTRIBUTE, None)
    if span is not None:
        span.end()
        setattr(context, _SPAN_ATTRIBUTE, None)


def _on_error(exception_context: Any) -> None:
    span: Span | None = getattr(exception_context.execution_context, _SPAN_ATTRIBUTE, None)
    if span is not None:
        # The error type only: a database message may quote the values of a row.
        span.set_status(
            Status(StatusCode.ERROR, type(exception_context.original_exception).__name__)
        )
        span.end()
        setattr(exception_context.execution_context, _SPAN_ATTRIBUTE, None)


def instrument_sql() -> None:
    """Trace the statements of every engine of the process, existing and future (idempotent)."""
    global _installed
    if _installed:
        return
    event.listen(Engine, "before_cursor_execute", _before_execute)
    event.listen(Engine, "after_cursor_execute", _after_execute)
    event.listen(Engine, "handle_error", _on_error)
    _installed = True
