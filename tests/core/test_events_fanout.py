"""Consumers that follow the territory registry: a new territory is consumed without a restart."""

from __future__ import annotations

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
        assert newcomer.code not in fanout.consumers
        assert await fanout.refresh() == [newcomer.code]
        assert await fanout.refresh() == []
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
