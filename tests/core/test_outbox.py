"""The transactional outbox: events are written with the change, and only committed ones leave."""

from __future__ import annotations

import uuid

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from core.config import Settings
from core.db import Database
from core.db.tables import outbox
from core.errors import BadUserInput
from core.events import Event, EventBus, OutboxRelay, enqueue
from core.events.subjects import Namespace, global_subject, territory_stream, territory_subject
from tests.core.test_events_fixtures import EventTerritories, stored_messages

# The shared fixtures (db, event_territories, bus) come from this plugin module.
pytest_plugins = ["tests.core.test_events_fixtures"]


class _Rollback(Exception):
    pass


async def test_enqueue_writes_the_cloudevent_in_the_callers_transaction(
    db: Database, event_territories: EventTerritories
) -> None:
    code = event_territories.remote.code
    async with db.territory_session(code) as session:
        event = await enqueue(
            session,
            subject=territory_subject(code, "user", "registered"),
            type="org.unityplan.user.registered",
            source="/tests/outbox",
            data={"userId": str(uuid.uuid4()), "at": uuid.UUID(int=7)},
        )
        # Visible inside the transaction before any commit: it is part of it.
        row = (await session.execute(select(outbox).where(outbox.c.id == event.id))).one()
    assert event.territory == code
    assert row.subject == f"territory.{code}.user.registered"
    assert row.type == "org.unityplan.user.registered"
    assert row.payload == event.to_dict()
    assert row.payload["data"]["at"] == str(uuid.UUID(int=7))
    assert row.sent_at is None
    assert row.attempts == 0
    async with db.territory_session(code) as session:
        committed = await session.scalar(select(outbox.c.id).where(outbox.c.id == event.id))
    assert committed == event.id


async def test_enqueue_refuses_a_territory_that_contradicts_the_subject(
    db: Database, event_territories: EventTerritories
) -> None:
    code = event_territories.home.code
    async with db.territory_session(code) as session:
        with pytest.raises(BadUserInput) as caught:
            await enqueue(
                session,
                subject=territory_subject(code, "user", "registered"),
                type="t",
                source="/tests",
                data={},
                territory=event_territories.remote.code,
            )
        assert caught.value.extensions["field"] == "territory"
        with pytest.raises(ValueError, match="Invalid event"):
            await enqueue(session, subject="territory.dk.user.>", type="t", source="/s", data={})


async def test_a_rolled_back_event_is_never_published(
    settings: Settings, db: Database, bus: EventBus, event_territories: EventTerritories
) -> None:
    code = event_territories.home.code
    subject = territory_subject(code, "user", "registered")
    written: list[Event] = []

    async def change_that_fails() -> None:
        async with db.territory_session(code) as session:
            written.append(
                await enqueue(session, subject=subject, type="t", source="/tests", data={})
            )
            raise _Rollback

    with pytest.raises(_Rollback):
        await change_that_fails()
    (lost,) = written
    async with db.territory_session(code) as session:
        kept = await enqueue(session, subject=subject, type="t", source="/tests", data={})

    relay = OutboxRelay(settings, db, bus=bus, registry=CollectorRegistry())
    while await relay.run_once():
        pass

    stream = Namespace.from_settings(settings.nats).stream(territory_stream(code))
    published = {m.event_id for m in await stored_messages(bus, stream)}
    assert str(kept.id) in published
    assert str(lost.id) not in published
    async with db.territory_session(code) as session:
        assert await session.scalar(select(outbox.c.id).where(outbox.c.id == lost.id)) is None


async def test_global_events_go_to_the_global_outbox(settings: Settings, db: Database) -> None:
    async with db.global_session() as session:
        event = await enqueue(
            session,
            subject=global_subject("user", "registered"),
            type="org.unityplan.user.registered",
            source="/tests",
            data={"username": "ada"},
            territory="dk",
        )
        row = (await session.execute(select(outbox).where(outbox.c.id == event.id))).one()
    assert row.payload["territory"] == "dk"
    assert row.payload["subject"] == "global.user.registered"


async def test_events_of_one_transaction_are_published_in_the_order_written(
    settings: Settings, db: Database, bus: EventBus, event_territories: EventTerritories
) -> None:
    code = event_territories.remote.code
    async with db.territory_session(code) as session:
        written = [
            await enqueue(
                session,
                subject=territory_subject(code, "test", "ordered"),
                type="org.unityplan.test.ordered",
                source="/tests/outbox",
                data={"n": n},
            )
            for n in range(20)
        ]
    relay = OutboxRelay(settings, db, bus=bus, registry=CollectorRegistry())
    while await relay.run_once():
        pass
    stream = Namespace.from_settings(settings.nats).stream(territory_stream(code))
    ours = {str(event.id) for event in written}
    published = [m.event_id for m in await stored_messages(bus, stream) if m.event_id in ours]
    assert published == [str(event.id) for event in written]
