"""Event telemetry: JetStream stream sizes and durable-consumer backlog as the server reports
them, and the relay's publish span joining the trace of the request that wrote the event."""

from __future__ import annotations

import uuid

from nats.js.api import AckPolicy, ConsumerConfig
from opentelemetry import trace
from opentelemetry.trace import SpanKind
from prometheus_client import CollectorRegistry

from core.config import Settings
from core.db import Database
from core.events import EventBus, OutboxRelay, enqueue
from core.events.stream_metrics import StreamSampler
from core.events.subjects import territory_stream, territory_subject
from tests.core.observability.test_runtime_and_sql import global_exporter
from tests.core.test_events_fixtures import EventTerritories, stored_messages

pytest_plugins = ["tests.core.test_events_fixtures"]


async def _write_events(db: Database, code: str, count: int, tag: str) -> None:
    async with db.territory_session(code) as session:
        for index in range(count):
            await enqueue(
                session,
                subject=territory_subject(code, "telemetry", "sampled"),
                type="org.unityplan.test.sampled",
                source=f"/tests/{tag}",
                data={"n": index},
            )


async def test_stream_sizes_and_consumer_backlog_are_sampled(
    settings: Settings, db: Database, bus: EventBus, event_territories: EventTerritories
) -> None:
    code = event_territories.home.code
    base = territory_stream(code)
    stream = bus.namespace.stream(base)
    durable = f"telemetry_{uuid.uuid4().hex[:8]}"
    await bus.js.add_consumer(
        stream,
        ConsumerConfig(
            durable_name=durable,
            filter_subject=bus.namespace.wire_subject(
                territory_subject(code, "telemetry", "sampled")
            ),
            ack_policy=AckPolicy.EXPLICIT,
        ),
    )
    registry = CollectorRegistry()
    sampler = StreamSampler(bus, registry)
    try:
        async with OutboxRelay(settings, db, bus=bus) as relay:
            await _write_events(db, code, 3, "sampled")
            await relay.run_once()
        await sampler.sample_once()
        messages = registry.get_sample_value("jetstream_stream_messages", {"stream": base})
        size = registry.get_sample_value("jetstream_stream_bytes", {"stream": base})
        pending = registry.get_sample_value(
            "jetstream_consumer_pending_messages", {"stream": base, "consumer": durable}
        )
        assert messages is not None
        assert messages >= 3
        assert size is not None
        assert size > 0
        assert pending == 3  # nothing pulled yet: all three wait for the consumer
        assert (
            registry.get_sample_value(
                "jetstream_consumer_ack_pending_messages", {"stream": base, "consumer": durable}
            )
            == 0
        )
        # Another namespace's streams are not ours to report.
        streams = {key[0] for key in sampler.consumers} | set(sampler.streams)
        assert all(not name.startswith(bus.namespace.stream("")) for name in streams)
    finally:
        await bus.js.delete_consumer(stream, durable)
    await sampler.sample_once()
    assert (base, durable) not in sampler.consumers  # a deleted consumer leaves the metrics


async def test_publish_span_continues_the_writers_trace_and_hands_it_on(
    settings: Settings, db: Database, bus: EventBus, event_territories: EventTerritories
) -> None:
    exporter = global_exporter()
    code = event_territories.remote.code
    tracer = trace.get_tracer("test")
    with tracer.start_as_current_span("request") as request:
        await _write_events(db, code, 1, "traced")
    async with OutboxRelay(settings, db, bus=bus) as relay:
        await relay.run_once()
    trace_id = request.get_span_context().trace_id
    (publish,) = [
        s
        for s in exporter.get_finished_spans()
        if s.kind == SpanKind.PRODUCER and s.context.trace_id == trace_id
    ]
    assert publish.parent is not None
    assert publish.parent.span_id == request.get_span_context().span_id
    assert publish.name == f"{territory_subject(code, 'telemetry', 'sampled')} publish"
    stored = await stored_messages(bus, bus.namespace.stream(territory_stream(code)))
    parents = [
        m.headers.get("traceparent", "") for m in stored if m.document["source"] == "/tests/traced"
    ]
    assert [p.split("-")[1:3] for p in parents] == [
        [f"{trace_id:032x}", f"{publish.context.span_id:016x}"]
    ]
