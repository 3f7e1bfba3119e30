"""The outbox relay: every committed event reaches JetStream exactly once, across NATS outages,
crashes between publishing and marking, failures of single events, and competing relays."""

from __future__ import annotations

import asyncio
import logging
import socket
import time
import uuid
from collections import Counter
from datetime import timedelta

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import func, select, text, update

from core.config import Settings
from core.db import Database, TerritoryType
from core.db.provisioning import create_territory
from core.db.tables import outbox
from core.events import Event, EventBus, OutboxRelay, enqueue
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


def _dead_nats_url() -> str:
    """A port nothing listens on (bound then released, so no other test picks it meanwhile)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    return f"nats://127.0.0.1:{port}"


async def _enqueue_many(
    db: Database, territories: EventTerritories, count: int, tag: str
) -> list[Event]:
    """`count` events spread over the global outbox and both territories' (on two pods)."""
    events: list[Event] = []
    for index in range(count):
        target = index % 3
        if target == 0:
            async with db.global_session() as session:
                events.append(
                    await enqueue(
                        session,
                        subject=global_subject("test", "counted"),
                        type="org.unityplan.test.counted",
                        source=f"/tests/{tag}",
                        data={"n": index},
                    )
                )
            continue
        code = (territories.home if target == 1 else territories.remote).code
        async with db.territory_session(code) as session:
            events.append(
                await enqueue(
                    session,
                    subject=territory_subject(code, "test", "counted"),
                    type="org.unityplan.test.counted",
                    source=f"/tests/{tag}",
                    data={"n": index},
                )
            )
    return events


async def _published_ids(
    settings: Settings, bus: EventBus, territories: EventTerritories
) -> Counter[str]:
    namespace = Namespace.from_settings(settings.nats)
    streams = [
        namespace.stream(StreamName.GLOBAL),
        namespace.stream(territory_stream(territories.home.code)),
        namespace.stream(territory_stream(territories.remote.code)),
    ]
    counts: Counter[str] = Counter()
    for stream in streams:
        counts.update(message.event_id for message in await stored_messages(bus, stream))
    return counts


async def _sent_at(db: Database, events: list[Event]) -> dict[uuid.UUID, object]:
    """sent_at of each event's outbox row: in the global outbox or its territory's."""
    found: dict[uuid.UUID, object] = {}
    ids = [event.id for event in events]
    registered = {t.code for t in await db.territories()}
    codes = sorted(registered & {event.territory for event in events if event.territory})
    sessions = [db.global_session()] + [db.territory_session(code) for code in codes]
    for opened in sessions:
        async with opened as session:
            rows = await session.execute(
                select(outbox.c.id, outbox.c.sent_at).where(outbox.c.id.in_(ids))
            )
            found.update({row.id: row.sent_at for row in rows})
    return found


async def test_every_event_is_published_exactly_once_across_a_nats_outage(
    settings: Settings, db: Database, bus: EventBus, event_territories: EventTerritories
) -> None:
    down = OutboxRelay(
        settings.replace(NATS_URL=_dead_nats_url()),
        db,
        registry=CollectorRegistry(),
        connect_timeout=0.5,
    )
    await down.start()
    events = await _enqueue_many(db, event_territories, 30, "outage")

    async def relay_kept_failing() -> bool:
        return down.connect_failures >= 3

    await eventually(relay_kept_failing, what="the relay to retry the dead NATS")
    started = time.monotonic()
    await down.stop()
    assert time.monotonic() - started < 5, "the relay must stop promptly while NATS is down"
    sent = await _sent_at(db, events)
    assert len(sent) == len(events)
    assert all(value is None for value in sent.values()), "nothing may be marked sent"

    async with OutboxRelay(settings, db, registry=CollectorRegistry()):

        async def all_sent() -> bool:
            sent = await _sent_at(db, events)
            return len(sent) == len(events) and all(value is not None for value in sent.values())

        await eventually(all_sent, what="every event to be published after NATS returned")

    counts = await _published_ids(settings, bus, event_territories)
    assert {str(event.id): counts[str(event.id)] for event in events} == {
        str(event.id): 1 for event in events
    }


async def test_a_republish_after_a_crash_before_marking_is_deduplicated(
    settings: Settings, db: Database, bus: EventBus, event_territories: EventTerritories
) -> None:
    code = event_territories.home.code
    async with db.territory_session(code) as session:
        event = await enqueue(
            session,
            subject=territory_subject(code, "test", "crashed"),
            type="org.unityplan.test.crashed",
            source="/tests",
            data={},
        )
    # The relay's publish, then a crash before its transaction marked the row.
    async with db.territory_session(code) as session:
        row = (await session.execute(select(outbox).where(outbox.c.id == event.id))).one()
    first = await bus.publish_document(
        row.subject, row.payload, event_id=str(row.id), headers=row.headers
    )
    assert not first.duplicate

    registry = CollectorRegistry()
    relay = OutboxRelay(settings, db, bus=bus, registry=registry)
    while await relay.run_once():
        pass
    assert (await _sent_at(db, [event]))[event.id] is not None
    counts = await _published_ids(settings, bus, event_territories)
    assert counts[str(event.id)] == 1
    assert (registry.get_sample_value("outbox_published_total", {"territory": code}) or 0) >= 1


async def test_competing_relays_never_publish_a_row_twice(
    settings: Settings, db: Database, event_territories: EventTerritories
) -> None:
    # Publish whatever earlier tests left behind, so the relays below see only our events.
    async with OutboxRelay(settings, db, registry=CollectorRegistry()) as cleaner:
        while await cleaner.run_once():
            pass
    events = await _enqueue_many(db, event_territories, 90, "competing")
    registries = [CollectorRegistry() for _ in range(3)]
    relays = [OutboxRelay(settings, db, registry=r, batch_size=5) for r in registries]
    totals = [0, 0, 0]

    async def drain(index: int) -> None:
        while True:
            published = await relays[index].run_once()
            if not published:
                return
            totals[index] += published

    try:
        await asyncio.gather(*(drain(index) for index in range(3)))
    finally:
        for relay in relays:
            await relay.stop()
    sent = await _sent_at(db, events)
    assert all(value is not None for value in sent.values())
    # Each row was published by exactly one relay, and the work was shared.
    assert sum(totals) == len(events)
    assert sum(1 for total in totals if total) >= 2
    for registry in registries:
        for label in ("global", event_territories.home.code, event_territories.remote.code):
            failures = registry.get_sample_value(
                "outbox_publish_failures_total", {"territory": label}
            )
            assert not failures


async def test_a_failing_event_backs_off_without_holding_up_the_others(
    settings: Settings,
    db: Database,
    bus: EventBus,
    event_territories: EventTerritories,
    run_id: str,
) -> None:
    # A territory subject whose stream does not exist yet: JetStream has no one to answer.
    orphan_code = f"evo-{run_id}"
    async with db.global_session() as session:
        orphan = await enqueue(
            session,
            subject=territory_subject(orphan_code, "test", "orphaned"),
            type="org.unityplan.test.orphaned",
            source="/tests",
            data={},
        )
        fine = await enqueue(
            session,
            subject=global_subject("test", "fine"),
            type="org.unityplan.test.fine",
            source="/tests",
            data={},
        )
        # Make the orphan due first, so a halt on it would hold up the fine one.
        await session.execute(
            update(outbox)
            .where(outbox.c.id == orphan.id)
            .values(available_at=func.now() - timedelta(minutes=1))
        )

    registry = CollectorRegistry()
    # A long backoff base, so "not yet due again" does not depend on how fast the test runs.
    patient = settings.replace(OUTBOX_POLL_INTERVAL_SECONDS=30, OUTBOX_MAX_BACKOFF_SECONDS=60)
    relay = OutboxRelay(patient, db, bus=bus, registry=registry)
    await relay.run_once()
    async with db.global_session() as session:
        rows = {
            row.id: row
            for row in await session.execute(
                select(outbox).where(outbox.c.id.in_([orphan.id, fine.id]))
            )
        }
    assert rows[fine.id].sent_at is not None
    failed = rows[orphan.id]
    assert failed.sent_at is None
    assert failed.attempts == 1
    assert "NoStreamResponse" in (failed.last_error or "")
    async with db.global_session() as session:
        wait = await session.scalar(
            select(outbox.c.available_at - func.now()).where(outbox.c.id == orphan.id)
        )
    assert wait is not None
    assert timedelta(seconds=20) < wait <= timedelta(seconds=30)
    assert registry.get_sample_value("outbox_publish_failures_total", {"territory": "global"}) == 1
    assert (registry.get_sample_value("outbox_backlog", {"territory": "global"}) or 0) >= 1
    assert (registry.get_sample_value("outbox_lag_seconds", {"territory": "global"}) or 0) > 0

    # Not retried before its backoff has passed.
    await relay.run_once()
    async with db.global_session() as session:
        attempts = await session.scalar(select(outbox.c.attempts).where(outbox.c.id == orphan.id))
    assert attempts == 1

    # Once the stream exists and the backoff has passed, the next attempt publishes it.
    await bus.ensure_territory_stream(orphan_code)
    async with db.global_session() as session:
        await session.execute(
            update(outbox).where(outbox.c.id == orphan.id).values(available_at=func.now())
        )
    await relay.run_once()
    assert (await _sent_at(db, [orphan]))[orphan.id] is not None
    namespace = Namespace.from_settings(settings.nats)
    stored = await stored_messages(bus, namespace.stream(territory_stream(orphan_code)))
    assert [m.event_id for m in stored] == [str(orphan.id)]


async def test_a_broken_outbox_does_not_hold_up_the_others(
    settings: Settings,
    db: Database,
    event_territories: EventTerritories,
    run_id: str,
    caplog: pytest.LogCaptureFixture,
) -> None:
    broken = await create_territory(
        settings, db, code=f"evx-{run_id}", name="Broken", type=TerritoryType.COUNTRY
    )
    async with db.territory_session(broken.code) as session:
        await session.execute(text("ALTER TABLE outbox RENAME TO outbox_away"))
    try:
        events = await _enqueue_many(db, event_territories, 6, "broken")
        relay = OutboxRelay(settings, db, registry=CollectorRegistry())
        try:
            with caplog.at_level(logging.DEBUG, logger="core.events.relay"):
                for _ in range(3):
                    await relay.run_once()
        finally:
            await relay.stop()
        sent = await _sent_at(db, events)
        assert all(value is not None for value in sent.values())
        complaints = [
            r for r in caplog.records if r.getMessage().startswith("outbox relay cannot read")
        ]
        assert len(complaints) == 3
        # The traceback once; later passes only note it.
        assert [r.levelno for r in complaints] == [logging.ERROR, logging.DEBUG, logging.DEBUG]
    finally:
        async with db.territory_session(broken.code) as session:
            await session.execute(text("ALTER TABLE outbox_away RENAME TO outbox"))


async def test_published_events_are_removed_after_the_retention(
    settings: Settings, db: Database, bus: EventBus, event_territories: EventTerritories
) -> None:
    code = event_territories.home.code
    old, recent, unsent = await _enqueue_many_in(db, code, 3)
    async with db.territory_session(code) as session:
        await session.execute(
            update(outbox)
            .where(outbox.c.id == old.id)
            .values(sent_at=func.now() - timedelta(hours=25))
        )
        await session.execute(
            update(outbox)
            .where(outbox.c.id == recent.id)
            .values(sent_at=func.now() - timedelta(hours=23))
        )
        # Never published, however old: it must stay until it is.
        await session.execute(
            update(outbox)
            .where(outbox.c.id == unsent.id)
            .values(created_at=func.now() - timedelta(days=3))
        )
    relay = OutboxRelay(settings, db, bus=bus, registry=CollectorRegistry())
    await relay.run_once()
    async with db.territory_session(code) as session:
        left = set(
            await session.scalars(
                select(outbox.c.id).where(outbox.c.id.in_([old.id, recent.id, unsent.id]))
            )
        )
    assert left == {recent.id, unsent.id}


async def _enqueue_many_in(db: Database, code: str, count: int) -> list[Event]:
    async with db.territory_session(code) as session:
        return [
            await enqueue(
                session,
                subject=territory_subject(code, "test", "kept"),
                type="org.unityplan.test.kept",
                source="/tests/retention",
                data={"n": n},
            )
            for n in range(count)
        ]


async def test_a_commit_wakes_the_relay_which_publishes_it_without_waiting_for_the_sweep(
    settings: Settings, db: Database, bus: EventBus, event_territories: EventTerritories
) -> None:
    # Neither a sweep nor polling can publish anything within this test: only the NOTIFY of
    # each commit (global outbox, a territory on the default pod, one on the second pod).
    asleep = settings.replace(OUTBOX_SWEEP_SECONDS=3600)
    relay = OutboxRelay(asleep, db, bus=bus, registry=CollectorRegistry())
    await relay.start()
    try:

        async def swept_once() -> bool:
            return relay.sweeps >= 1

        await eventually(swept_once, what="the relay's first sweep")
        assert relay.listening
        passes = relay.passes
        events = await _enqueue_many(db, event_territories, 3, "woken")
        # A territory's outbox may hold a global event too: its stream is made ready as well.
        async with db.territory_session(event_territories.home.code) as session:
            events.append(
                await enqueue(
                    session,
                    subject=global_subject("test", "woken"),
                    type="org.unityplan.test.woken",
                    source="/tests/woken",
                    data={},
                )
            )

        async def all_sent() -> bool:
            sent = await _sent_at(db, events)
            return len(sent) == len(events) and all(value is not None for value in sent.values())

        await eventually(all_sent, what="the committed events to be published")
        assert relay.sweeps == 1
        assert relay.passes > passes
    finally:
        await relay.stop()
    namespace = Namespace.from_settings(settings.nats)
    stored = await stored_messages(
        bus, namespace.stream(territory_stream(event_territories.remote.code))
    )
    remote = [event for event in events if event.territory == event_territories.remote.code]
    assert {str(event.id) for event in remote} <= {m.event_id for m in stored}
    published = next(m for m in stored if m.event_id == str(remote[0].id))
    # The relay stamped the moment it published, after the event was written.
    written = Event.from_dict(published.document)
    assert written.publishtime is not None
    assert written.time <= written.publishtime


async def _home_event(db: Database, territories: EventTerritories, action: str) -> Event:
    """An event committed in the home territory's outbox."""
    home = territories.home.code
    async with db.territory_session(home) as session:
        return await enqueue(
            session,
            subject=territory_subject(home, "test", action),
            type=f"org.unityplan.test.{action}",
            source=f"/tests/{action}",
            data={},
        )


async def _until_published(db: Database, event: Event, what: str) -> None:
    async def sent() -> bool:
        return (await _sent_at(db, [event])).get(event.id) is not None

    await eventually(sent, what=what)


async def test_a_commit_is_published_while_a_sweep_is_held_up(
    settings: Settings, db: Database, bus: EventBus, event_territories: EventTerritories
) -> None:
    # A sweep reads every outbox of a pod; one it cannot read yet (locked by a migration, say)
    # holds the sweep up. Events that commits named go out meanwhile: the sweep is not on
    # their way.
    remote = event_territories.remote
    locker = db.engine(remote.pod_id)
    relay = OutboxRelay(settings, db, bus=bus, registry=CollectorRegistry())
    async with locker.connect() as holding:
        await holding.execute(text(f'LOCK TABLE "{remote.schema}".outbox IN ACCESS EXCLUSIVE MODE'))
        await relay.start()
        try:

            async def sweep_waits() -> bool:
                async with locker.connect() as probe:
                    waiting = await probe.scalar(
                        text(
                            "SELECT count(*) FROM pg_locks WHERE NOT granted"
                            " AND relation = CAST(:outbox AS regclass)"
                        ),
                        {"outbox": f'"{remote.schema}".outbox'},
                    )
                return bool(waiting)

            await eventually(sweep_waits, what="the sweep to wait for the locked outbox")
            event = await _home_event(db, event_territories, "swept")
            await _until_published(db, event, "the event to be published during the sweep")
            assert relay.sweeps == 0
            assert await sweep_waits()
            await holding.rollback()

            async def swept() -> bool:
                return relay.sweeps >= 1

            await eventually(swept, what="the sweep to finish once the outbox is free")
        finally:
            await holding.rollback()  # a sweep still waiting could not finish, nor the relay
            await relay.stop()


async def test_a_lost_listening_connection_makes_the_relay_sweep_and_listen_again(
    settings: Settings, db: Database, bus: EventBus, event_territories: EventTerritories
) -> None:
    # Commits made while nobody listened are found by the sweep that follows the loss, not
    # after OUTBOX_SWEEP_SECONDS.
    relay = OutboxRelay(
        settings.replace(OUTBOX_SWEEP_SECONDS=3600), db, bus=bus, registry=CollectorRegistry()
    )
    await relay.start()
    try:

        async def listening() -> bool:
            return relay.listening and relay.sweeps >= 1

        await eventually(listening, what="the relay to listen and sweep")
        sweeps = relay.sweeps
        async with db.engine(db.default_pod).connect() as admin:
            ended = await admin.scalar(
                text(
                    "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
                    " WHERE application_name = 'unityplan:outbox-listener'"
                    " AND datname = current_database()"
                )
            )
        assert ended == 1

        async def swept_again() -> bool:
            return relay.sweeps > sweeps and relay.listening

        await eventually(swept_again, what="a sweep and listening again after the loss")
        event = await _home_event(db, event_territories, "relistened")
        await _until_published(db, event, "an event committed after listening again")
    finally:
        await relay.stop()


async def test_an_idle_relay_is_connected_to_nats(settings: Settings, db: Database) -> None:
    # Readiness reports the relay's connection, and the first event must not wait for it.
    relay = OutboxRelay(settings.replace(OUTBOX_SWEEP_SECONDS=3600), db, registry=None)
    await relay.start()
    try:

        async def connected() -> bool:
            return relay.bus.connected

        await eventually(connected, what="the idle relay to connect")
    finally:
        await relay.stop()


async def test_an_event_waits_behind_an_earlier_one_of_its_subject_that_waits_for_a_retry(
    settings: Settings, db: Database, bus: EventBus, run_id: str
) -> None:
    """Order per subject survives retries: while the first event of a subject backs off, the
    next one of that subject waits too; other subjects' events go on."""
    subject = global_subject("test", f"ordered{run_id.replace('-', '')}")
    other = global_subject("test", f"other{run_id.replace('-', '')}")
    written: list[Event] = []
    for target in (subject, subject, other):
        async with db.global_session() as session:
            written.append(
                await enqueue(
                    session,
                    subject=target,
                    type="org.unityplan.test.ordered",
                    source="/tests",
                    data={},
                )
            )
    first, second, unrelated = written
    async with db.global_session() as session:
        await session.execute(
            update(outbox)
            .where(outbox.c.id == first.id)
            .values(available_at=func.now() + timedelta(minutes=5), attempts=1)
        )
    relay = OutboxRelay(settings, db, bus=bus, registry=CollectorRegistry())
    await relay.run_once()
    sent = await _sent_at(db, written)
    assert sent[first.id] is None
    assert sent[second.id] is None  # behind the first, though due itself
    assert sent[unrelated.id] is not None
    async with db.global_session() as session:
        await session.execute(
            update(outbox).where(outbox.c.id == first.id).values(available_at=func.now())
        )
    await relay.run_once()
    sent = await _sent_at(db, written)
    assert sent[first.id] is not None
    assert sent[second.id] is not None
    namespace = Namespace.from_settings(settings.nats)
    stored = await stored_messages(bus, namespace.stream(StreamName.GLOBAL))
    order = [m.event_id for m in stored if m.event_id in {str(first.id), str(second.id)}]
    assert order == [str(first.id), str(second.id)]


async def test_one_relay_at_a_time_publishes_from_an_outbox(
    settings: Settings, db: Database, bus: EventBus, run_id: str
) -> None:
    """Relays of every service and replica share the outboxes, but while one publishes from an
    outbox the others leave it alone: rows it holds cannot be overtaken by later ones."""
    async with db.global_session() as session:
        event = await enqueue(
            session,
            subject=global_subject("test", f"turn{run_id.replace('-', '')}"),
            type="org.unityplan.test.turn",
            source="/tests",
            data={},
        )
    relay = OutboxRelay(settings, db, bus=bus, registry=CollectorRegistry())
    # Another relay's turn on the global outbox, from a connection of its own.
    other = await db.engine(db.default_pod).connect()
    try:
        taken = await other.scalar(
            text("SELECT pg_try_advisory_lock(hashtext('unityplan.outbox:global'))")
        )
        assert taken is True
        await relay.run_once()
        assert (await _sent_at(db, [event]))[event.id] is None
        await other.execute(text("SELECT pg_advisory_unlock(hashtext('unityplan.outbox:global'))"))
    finally:
        await other.close()
    await relay.run_once()
    assert (await _sent_at(db, [event]))[event.id] is not None
