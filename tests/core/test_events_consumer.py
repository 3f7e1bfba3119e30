"""Durable consumers: handled once per event (even when redelivered), in the event's territory
schema, retried after a failure, and with the producer's trace context."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass, field

import pytest
from opentelemetry import trace
from opentelemetry.sdk.trace import TracerProvider
from prometheus_client import REGISTRY, CollectorRegistry
from sqlalchemy import Column, MetaData, Table, Text, func, insert, select
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.db import Database
from core.db.tables import processed_events
from core.events import Event, EventBus, OutboxRelay, enqueue
from core.events.bus import MSG_ID_HEADER
from core.events.subjects import (
    Namespace,
    StreamName,
    global_subject,
    territory_stream,
    territory_subject,
)
from tests.core.test_events_fixtures import EventTerritories, eventually, stored_messages

# The shared fixtures (db, event_territories, bus) come from this plugin module.
pytest_plugins = ["tests.core.test_events_fixtures"]

# A territory table written by handlers; unqualified, so the session decides the schema.
_metadata = MetaData()
territory_settings = Table(
    "settings", _metadata, Column("key", Text, primary_key=True), Column("value", JSONB)
)


@dataclass
class Recorder:
    """A handler that remembers what it saw, and where."""

    tag: str = field(default_factory=lambda: uuid.uuid4().hex)
    seen: list[tuple[uuid.UUID, str]] = field(default_factory=list)
    trace_ids: list[int] = field(default_factory=list)
    fail_first: int = 0

    async def __call__(self, event: Event, session: AsyncSession) -> None:
        schema = await session.scalar(select(func.current_schema()))
        self.seen.append((event.id, str(schema)))
        self.trace_ids.append(trace.get_current_span().get_span_context().trace_id)
        attempt = sum(1 for seen_id, _ in self.seen if seen_id == event.id)
        await session.execute(
            insert(territory_settings).values(key=f"{self.tag}:{event.id}:{attempt}", value=attempt)
        )
        if attempt <= self.fail_first:
            raise RuntimeError(f"attempt {attempt} fails")


@pytest.fixture
async def durable(bus: EventBus, settings: Settings) -> AsyncIterator[Callable[[str], str]]:
    """Unique durable names; the consumers are deleted from their streams afterwards."""
    made: list[tuple[str, str]] = []
    namespace = Namespace.from_settings(settings.nats)

    def make(stream_base: str) -> str:
        name = f"test-{uuid.uuid4().hex[:12]}"
        made.append((namespace.stream(stream_base), name))
        return name

    yield make
    for stream, name in made:
        await bus.js.delete_consumer(stream, name)


async def _publish(bus: EventBus, code: str, action: str, **data: object) -> Event:
    event = Event(
        type="org.unityplan.test.happened",
        source="/tests/consumer",
        subject=territory_subject(code, "test", action),
        data=data,
        territory=code,
    )
    await bus.publish(event)
    return event


def _consumed(name: str) -> dict[str, float]:
    """This consumer's `events_consumed_total` by outcome (the bus counts on the default
    registry; durable names are unique per test)."""
    outcomes = ("handled", "duplicate", "failed", "malformed")
    counts = {
        outcome: REGISTRY.get_sample_value(
            "events_consumed_total", {"consumer": name, "outcome": outcome}
        )
        or 0.0
        for outcome in outcomes
    }
    return {outcome: count for outcome, count in counts.items() if count}


async def _processed(db: Database, code: str, consumer: str) -> list[uuid.UUID]:
    async with db.territory_session(code) as session:
        rows = await session.scalars(
            select(processed_events.c.event_id).where(processed_events.c.consumer == consumer)
        )
        return list(rows)


async def _keys(db: Database, code: str, prefix: str) -> set[str]:
    async with db.territory_session(code) as session:
        rows = await session.scalars(
            select(territory_settings.c.key).where(territory_settings.c.key.startswith(prefix))
        )
        return set(rows)


async def test_each_event_is_handled_once_in_its_territory_schema(
    db: Database,
    bus: EventBus,
    event_territories: EventTerritories,
    durable: Callable[[str], str],
) -> None:
    remote = event_territories.remote
    name = durable(territory_stream(remote.code))
    recorder = Recorder()
    consumer = await bus.consume(name, f"territory.{remote.code}.test.once", recorder)
    events = [await _publish(bus, remote.code, "once", n=n) for n in range(3)]

    async def all_handled() -> bool:
        return len(recorder.seen) >= len(events)

    await eventually(all_handled, what="three events to be handled")
    await consumer.stop()
    assert recorder.seen == [(event.id, remote.schema) for event in events]
    assert sorted(await _processed(db, remote.code, name)) == sorted(e.id for e in events)
    # The handler's write landed in the remote territory's schema, on its pod.
    assert await _keys(db, remote.code, recorder.tag) == {
        f"{recorder.tag}:{event.id}:1" for event in events
    }


async def test_a_redelivered_event_is_acked_without_running_the_handler_again(
    settings: Settings,
    db: Database,
    bus: EventBus,
    event_territories: EventTerritories,
    durable: Callable[[str], str],
) -> None:
    home = event_territories.home
    stream_base = territory_stream(home.code)
    stream = Namespace.from_settings(settings.nats).stream(stream_base)
    name = durable(stream_base)
    recorder = Recorder()
    subject_filter = f"territory.{home.code}.test.redelivered"
    first = await bus.consume(name, subject_filter, recorder)
    await first.stop()  # the durable consumer stays on the server, idle
    event = await _publish(bus, home.code, "redelivered")

    # A worker takes the message, commits the handler's work, and dies before acking.
    worker = await bus.js.pull_subscribe_bind(durable=name, stream=stream)
    (message,) = await worker.fetch(1, timeout=5)
    assert await first.process(Event.from_bytes(message.data)) is True
    await message.nak()
    await worker.unsubscribe()

    second = await bus.consume(name, subject_filter, recorder)

    async def redelivery_acked() -> bool:
        info = await bus.js.consumer_info(stream, name)
        return not (info.num_ack_pending or info.num_pending or info.num_redelivered)

    await eventually(redelivery_acked, what="the redelivered event to be acked")
    await second.stop()
    assert recorder.seen == [(event.id, home.schema)]
    assert _consumed(name) == {"duplicate": 1}
    assert await _processed(db, home.code, name) == [event.id]


async def test_the_same_event_published_twice_is_handled_once(
    db: Database,
    bus: EventBus,
    event_territories: EventTerritories,
    durable: Callable[[str], str],
) -> None:
    home = event_territories.home
    name = durable(territory_stream(home.code))
    event = Event(
        type="org.unityplan.test.happened",
        source="/tests/consumer",
        subject=territory_subject(home.code, "test", "twice"),
        data={},
        territory=home.code,
    )
    # Two message ids (as after the duplicate window): JetStream stores both.
    for attempt in ("a", "b"):
        await bus.js.publish(
            bus.namespace.wire_subject(event.subject),
            event.to_bytes(),
            headers={MSG_ID_HEADER: f"{event.id}-{attempt}"},
        )
    marker = await _publish(bus, home.code, "twice", step="after")
    recorder = Recorder()
    consumer = await bus.consume(name, f"territory.{home.code}.test.twice", recorder)

    async def marker_handled() -> bool:
        return any(seen_id == marker.id for seen_id, _ in recorder.seen)

    await eventually(marker_handled, what="the events to be consumed")
    await consumer.stop()
    assert [seen_id for seen_id, _ in recorder.seen] == [event.id, marker.id]
    assert _consumed(name) == {"handled": 2, "duplicate": 1}


async def test_a_failing_handler_is_rolled_back_and_retried(
    db: Database,
    bus: EventBus,
    event_territories: EventTerritories,
    durable: Callable[[str], str],
) -> None:
    home = event_territories.home
    name = durable(territory_stream(home.code))
    recorder = Recorder(fail_first=1)
    consumer = await bus.consume(name, f"territory.{home.code}.test.retried", recorder)
    event = await _publish(bus, home.code, "retried")

    async def processed() -> bool:
        return event.id in await _processed(db, home.code, name)

    await eventually(processed, what="the retried event to be processed")
    await consumer.stop()
    assert recorder.seen == [(event.id, home.schema), (event.id, home.schema)]
    # The failed attempt's write was rolled back with it; the retry's stayed.
    assert await _keys(db, home.code, recorder.tag) == {f"{recorder.tag}:{event.id}:2"}
    assert _consumed(name) == {"failed": 1, "handled": 1}


async def test_a_malformed_message_is_dropped_and_consumption_goes_on(
    settings: Settings,
    bus: EventBus,
    event_territories: EventTerritories,
    durable: Callable[[str], str],
) -> None:
    home = event_territories.home
    stream_base = territory_stream(home.code)
    name = durable(stream_base)
    await bus.js.publish(
        bus.namespace.wire_subject(territory_subject(home.code, "test", "garbled")), b"{not json"
    )
    good = await _publish(bus, home.code, "garbled", step="after garbage")
    recorder = Recorder()
    consumer = await bus.consume(name, f"territory.{home.code}.test.garbled", recorder)

    async def good_handled() -> bool:
        return any(seen_id == good.id for seen_id, _ in recorder.seen)

    await eventually(good_handled, what="the well-formed event to be handled")
    stream = Namespace.from_settings(settings.nats).stream(stream_base)

    async def nothing_pending() -> bool:
        info = await bus.js.consumer_info(stream, name)
        return not (info.num_ack_pending or info.num_pending)

    await eventually(nothing_pending, what="the malformed message to be terminated")
    await consumer.stop()
    assert recorder.seen == [(good.id, home.schema)]
    assert _consumed(name) == {"malformed": 1, "handled": 1}


async def test_trace_context_travels_from_enqueue_to_the_consumer(
    settings: Settings,
    db: Database,
    bus: EventBus,
    durable: Callable[[str], str],
) -> None:
    name = durable(StreamName.GLOBAL)
    recorder = Recorder()
    tracer = TracerProvider().get_tracer("tests.events")
    with tracer.start_as_current_span("register user") as span:
        async with db.global_session() as session:
            event = await enqueue(
                session,
                subject=global_subject("test", "traced"),
                type="org.unityplan.test.traced",
                source="/tests/consumer",
                data={},
            )
        expected = span.get_span_context()
    # The relay runs outside that trace: the context must come from the outbox row.
    relay = OutboxRelay(settings, db, bus=bus, registry=CollectorRegistry())
    while await relay.run_once():
        pass
    stored = [
        m
        for m in await stored_messages(bus, bus.namespace.stream(StreamName.GLOBAL))
        if m.event_id == str(event.id)
    ]
    assert stored[0].headers["traceparent"].split("-")[1] == f"{expected.trace_id:032x}"

    consumer = await bus.consume(name, "global.test.traced", recorder)

    async def handled() -> bool:
        return any(seen_id == event.id for seen_id, _ in recorder.seen)

    await eventually(handled, what="the traced event to be handled")
    await consumer.stop()
    index = [seen_id for seen_id, _ in recorder.seen].index(event.id)
    assert recorder.trace_ids[index] == expected.trace_id
    # A global event without a territory is handled in the global schema.
    assert recorder.seen[index] == (event.id, "global")
