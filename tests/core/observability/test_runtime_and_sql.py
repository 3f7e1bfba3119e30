"""Event-loop lag of the runtime probe, and SQL spans from the engine hook (real PostgreSQL)."""

from __future__ import annotations

import asyncio
import contextlib
import time

from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter
from prometheus_client import CollectorRegistry
from sqlalchemy import text
from sqlalchemy.exc import ProgrammingError
from sqlalchemy.ext.asyncio import create_async_engine

from core.config import Settings
from core.observability.runtime import EventLoopMonitor
from core.observability.sql import instrument_sql


def global_exporter() -> InMemorySpanExporter:
    """An exporter on the process's global provider (installing one if none is set yet)."""
    provider = trace.get_tracer_provider()
    if not isinstance(provider, TracerProvider):
        trace.set_tracer_provider(TracerProvider())
        provider = trace.get_tracer_provider()
    assert isinstance(provider, TracerProvider)
    exporter = InMemorySpanExporter()
    provider.add_span_processor(SimpleSpanProcessor(exporter))
    return exporter


async def test_a_blocked_loop_shows_as_lag() -> None:
    registry = CollectorRegistry()
    monitor = EventLoopMonitor(registry, interval_seconds=0.02)
    monitor.start()
    try:
        await asyncio.sleep(0.05)
        time.sleep(0.3)  # noqa: ASYNC251 - blocks the loop on purpose: the probe wakes up late
        deadline = time.monotonic() + 5
        lag = 0.0
        while lag < 0.2 and time.monotonic() < deadline:
            await asyncio.sleep(0.02)
            lag = max(lag, registry.get_sample_value("python_event_loop_lag_seconds") or 0.0)
        assert lag >= 0.2
        # The task count is read when the metrics are: five more tasks show at once.
        before = registry.get_sample_value("python_asyncio_tasks") or 0
        sleepers = [asyncio.create_task(asyncio.sleep(10)) for _ in range(5)]
        await asyncio.sleep(0)
        assert (registry.get_sample_value("python_asyncio_tasks") or 0) == before + 5
        for sleeper in sleepers:
            sleeper.cancel()
        await asyncio.gather(*sleepers, return_exceptions=True)
        assert before >= 1
        count = registry.get_sample_value("python_event_loop_lag_distribution_seconds_count")
        assert count is not None
        assert count >= 2
    finally:
        await monitor.stop()


async def test_statements_in_a_trace_become_child_spans_and_others_none(
    settings: Settings,
) -> None:
    exporter = global_exporter()
    instrument_sql()
    engine = create_async_engine(settings.database.url)
    tracer = trace.get_tracer("test")
    try:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 'outside a trace'"))
        with tracer.start_as_current_span("request") as request:
            async with engine.connect() as connection:
                await connection.execute(text("SELECT :value"), {"value": "secret-ish"})
                with contextlib.suppress(ProgrammingError):
                    await connection.execute(text("SELECT no_such_column"))
    finally:
        await engine.dispose()
    request_id = request.get_span_context().span_id
    spans = [s for s in exporter.get_finished_spans() if s.name == "SELECT"]
    texts = [s.attributes["db.query.text"] for s in spans if s.attributes]
    assert "SELECT 'outside a trace'" not in texts
    mine = [s for s in spans if s.parent is not None and s.parent.span_id == request_id]
    assert [s.attributes["db.query.text"] for s in mine if s.attributes] == [
        "SELECT $1",
        "SELECT no_such_column",
    ]
    assert all("secret-ish" not in str(s.attributes) for s in mine)
    assert mine[1].status.status_code == trace.StatusCode.ERROR
    assert mine[0].status.status_code == trace.StatusCode.UNSET
