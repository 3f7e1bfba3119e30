"""Consumers that follow the territory registry: a new territory is consumed without a restart."""

from __future__ import annotations

import contextlib
import uuid

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.db import Database, TerritoryType
from core.db.provisioning import create_territory
from core.events import Event, EventBus
from core.events.subjects import Namespace, territory_stream, territory_subject
from tests.core.test_events_fixtures import EventTerritories, eventually

# The shared fixtures (db, event_territories, bus) come from this plugin module.
pytest_plugins = ["tests.core.test_events_fixtures"]


async def test_territories_provisioned_later_are_consumed_too(
    settings: Settings,
    db: Database,
    bus: EventBus,
    event_territories: EventTerritories,
    run_id: str,
) -> None:
    seen: list[tuple[uuid.UUID, str]] = []

    async def handler(event: Event, session: AsyncSession) -> None:
        seen.append((event.id, str(await session.scalar(select(func.current_schema())))))

    prefix = f"fan-{uuid.uuid4().hex[:8]}"
    fanout = await bus.consume_territories(prefix, "test.fanned", handler, refresh_seconds=3600)
    names: dict[str, str] = {}
    try:
        assert {event_territories.home.code, event_territories.remote.code} <= set(fanout.consumers)
        newcomer = await create_territory(
            settings, db, code=f"evn-{run_id}", name="Newcomer", type=TerritoryType.COUNTRY
        )

        async def followed() -> bool:  # the registry's change wakes the consumers
            return newcomer.code in fanout.consumers

        await eventually(followed, what="a consumer for the new territory")
        assert await fanout.refresh() == []  # declared once
        names = {code: consumer.durable_name for code, consumer in fanout.consumers.items()}
        assert names[newcomer.code] == f"{prefix}-{newcomer.code}"

        events = []
        for territory in (event_territories.remote, newcomer):
            event = Event(
                type="org.unityplan.test.fanned",
                source="/tests/fanout",
                subject=territory_subject(territory.code, "test", "fanned"),
                territory=territory.code,
            )
            await bus.publish(event)
            events.append((event.id, territory.schema))

        async def both_handled() -> bool:
            return len(seen) >= len(events)

        await eventually(both_handled, what="an event in each territory to be handled")
        assert sorted(seen) == sorted(events)
    finally:
        await fanout.stop()
        namespace = Namespace.from_settings(settings.nats)
        for code, name in names.items():
            await bus.js.delete_consumer(namespace.stream(territory_stream(code)), name)


async def test_a_territory_created_while_consuming_gets_its_events_consumed(
    settings: Settings,
    db: Database,
    bus: EventBus,
    event_territories: EventTerritories,
    run_id: str,
) -> None:
    seen: list[uuid.UUID] = []

    async def handler(event: Event, session: AsyncSession) -> None:
        seen.append(event.id)

    prefix = f"fan-{uuid.uuid4().hex[:8]}"
    # Following the registry by itself (nothing calls refresh here), and not by looking again
    # now and then (an hour): only the registry's change notification can bring the newcomer.
    fanout = await bus.consume_territories(prefix, "test.joined", handler, refresh_seconds=3600)
    newcomer_code = f"evj-{run_id}"
    elsewhere = Database(settings.database)  # another process provisions it
    try:
        await create_territory(
            settings, elsewhere, code=newcomer_code, name="Joined", type=TerritoryType.COUNTRY
        )
        event = Event(
            type="org.unityplan.test.joined",
            source="/tests/fanout",
            subject=territory_subject(newcomer_code, "test", "joined"),
            territory=newcomer_code,
        )
        # Published as soon as the stream exists, possibly before its consumer: the consumer
        # starts from the beginning of the stream, so the event is not missed either way.
        await bus.ensure_territory_stream(newcomer_code)
        await bus.publish(event)

        async def handled() -> bool:
            return event.id in seen

        await eventually(handled, what="the new territory's event to be handled")
        assert seen.count(event.id) == 1
        assert newcomer_code in fanout.consumers
    finally:
        await elsewhere.dispose()
        names = {code: consumer.durable_name for code, consumer in fanout.consumers.items()}
        await fanout.stop()
        namespace = Namespace.from_settings(settings.nats)
        for code, name in names.items():
            await bus.js.delete_consumer(namespace.stream(territory_stream(code)), name)


async def test_pull_consumers_of_an_earlier_release_carry_on_without_handling_an_event_twice(
    settings: Settings, db: Database, bus: EventBus, event_territories: EventTerritories
) -> None:
    code = event_territories.home.code
    prefix = f"fan-{uuid.uuid4().hex[:8]}"
    seen: list[uuid.UUID] = []

    async def handler(event: Event, session: AsyncSession) -> None:
        seen.append(event.id)

    def fanned(n: int) -> Event:
        return Event(
            type="org.unityplan.test.moved",
            source="/tests/fanout",
            subject=territory_subject(code, "test", "moved"),
            territory=code,
            data={"n": n},
        )

    # A pull consumer of the same name handled the first event.
    first, second = fanned(1), fanned(2)
    await bus.publish(first)
    pull = await bus.consume(f"{prefix}-{code}", f"territory.{code}.test.moved", handler)

    async def first_handled() -> bool:
        return first.id in seen

    await eventually(first_handled, what="the pull consumer to handle the first event")
    await pull.stop()
    await bus.publish(second)
    fanout = await bus.consume_territories(prefix, "test.moved", handler, refresh_seconds=3600)
    try:

        async def second_handled() -> bool:
            return second.id in seen

        await eventually(second_handled, what="the push consumer to handle the second event")
        info = await bus.js.consumer_info(pull.stream, pull.durable_name)
        assert info.config.deliver_subject is not None
    finally:
        await fanout.stop()
        with contextlib.suppress(Exception):
            await bus.js.delete_consumer(pull.stream, pull.durable_name)
    # The first event is not handled again (its position, or else its processed-record).
    assert seen == [first.id, second.id]
