"""Streams are created idempotently at start-up, and JetStream drops repeated event ids."""

from __future__ import annotations

import asyncio
import uuid

from core.config import Settings
from core.events import Event, EventBus, ensure_streams, stream_specs
from core.events.subjects import Namespace, territory_stream, territory_subject
from tests.core.test_events_fixtures import EventTerritories, stored_messages

# The shared fixtures (db, event_territories, bus) come from this plugin module.
pytest_plugins = ["tests.core.test_events_fixtures"]

DAY = 86400


async def test_streams_created_twice_keep_the_same_config(
    settings: Settings, bus: EventBus, run_id: str
) -> None:
    code = f"evs-{run_id}"
    specs = stream_specs(settings.nats, [code])
    first = await ensure_streams(bus.js, specs)
    second = await ensure_streams(bus.js, specs)
    prefix = run_id.upper()
    assert [info.config.name for info in first] == [
        f"{prefix}_GLOBAL_EVENTS",
        f"{prefix}_CROSS_TERRITORY",
        f"{prefix}_REALTIME",
        f"{prefix}_TERRITORY_EVS_{run_id.upper()}",
    ]
    for before, after in zip(first, second, strict=True):
        assert after.config == before.config
        assert after.created == before.created
    by_name = {info.config.name: info.config for info in second}
    territory = by_name[f"{prefix}_TERRITORY_EVS_{run_id.upper()}"]
    assert territory.subjects == [f"{run_id}.territory.{code}.>"]
    assert territory.max_age == settings.nats.territory_retention_days * DAY
    assert territory.duplicate_window == settings.nats.duplicate_window_seconds
    assert by_name[f"{prefix}_GLOBAL_EVENTS"].subjects == [f"{run_id}.global.>"]
    assert by_name[f"{prefix}_GLOBAL_EVENTS"].max_age == settings.nats.global_retention_days * DAY
    assert by_name[f"{prefix}_CROSS_TERRITORY"].subjects == [f"{run_id}.cross.>"]
    assert by_name[f"{prefix}_CROSS_TERRITORY"].max_age == settings.nats.cross_retention_days * DAY
    # Realtime copies only have to outlive an outage until the live feeds resume.
    assert by_name[f"{prefix}_REALTIME"].subjects == [f"{run_id}.rt.user.>"]
    assert by_name[f"{prefix}_REALTIME"].max_age == 600


async def test_changed_retention_updates_the_stream_in_place(
    settings: Settings, bus: EventBus, run_id: str
) -> None:
    code = f"evr-{run_id}"
    (created,) = await ensure_streams(bus.js, stream_specs(settings.nats, [code])[3:])
    shorter = settings.replace(TERRITORY_EVENTS_RETENTION_DAYS=2)
    (updated,) = await ensure_streams(bus.js, stream_specs(shorter.nats, [code])[3:])
    assert updated.config.name == created.config.name
    assert updated.created == created.created
    assert updated.config.max_age == 2 * DAY
    assert created.config.max_age == settings.nats.territory_retention_days * DAY


async def test_registry_territories_get_their_streams(
    bus: EventBus, event_territories: EventTerritories, run_id: str
) -> None:
    infos = await bus.ensure_streams()
    names = {info.config.name for info in infos}
    for territory in (event_territories.home, event_territories.remote):
        suffix = territory.code.upper().replace("-", "_")
        assert f"{run_id.upper()}_TERRITORY_{suffix}" in names


async def test_jetstream_drops_a_repeated_event_id(
    settings: Settings, bus: EventBus, event_territories: EventTerritories
) -> None:
    code = event_territories.home.code
    event = Event(
        type="org.unityplan.test.pinged",
        source="/tests",
        subject=territory_subject(code, "test", "pinged"),
        data={"nonce": str(uuid.uuid4())},
        territory=code,
    )
    first = await bus.publish(event)
    again = await bus.publish(event)
    assert not first.duplicate
    assert again.duplicate
    assert again.seq == first.seq
    stream = Namespace.from_settings(settings.nats).stream(territory_stream(code))
    stored = [m for m in await stored_messages(bus, stream) if m.event_id == str(event.id)]
    assert len(stored) == 1
    assert stored[0].headers["Nats-Msg-Id"] == str(event.id)
    assert stored[0].document == event.to_dict()


async def test_services_starting_together_agree_on_the_streams(
    settings: Settings, bus: EventBus, run_id: str
) -> None:
    code = f"evc-{run_id}"
    # Two versions of a service disagree on retention, and all start at once.
    specs = [
        stream_specs(settings.replace(TERRITORY_EVENTS_RETENTION_DAYS=days).nats, [code])[3]
        for days in (3, 3, 4, 3, 4)
    ]
    infos = await asyncio.gather(*(ensure_streams(bus.js, [spec]) for spec in specs))
    assert {info.config.name for (info,) in infos} == {specs[0].name}
    final = await bus.js.stream_info(specs[0].name)
    assert final.config.max_age in (3 * DAY, 4 * DAY)
    assert final.config.subjects == [f"{run_id}.territory.{code}.>"]
