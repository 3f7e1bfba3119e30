"""Fixtures and helpers the event and outbox tests share (imported by them; no tests here)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import orjson
import pytest
from nats.js.errors import NotFoundError

from core.config import Settings
from core.db import Database, Territory, TerritoryType
from core.db.migrations import migrate_global
from core.db.provisioning import create_territory
from core.events import EventBus
from tests.conftest import SECOND_POD


@dataclass(frozen=True)
class EventTerritories:
    """Two territories for event tests: one on the default pod, one on pod-b."""

    home: Territory
    remote: Territory


@pytest.fixture(scope="module")
async def db(settings: Settings) -> AsyncIterator[Database]:
    await migrate_global(settings)
    database = Database(settings.database)
    yield database
    await database.dispose()


@pytest.fixture(scope="module")
async def event_territories(settings: Settings, db: Database, run_id: str) -> EventTerritories:
    # Re-running create_territory is a no-op, so every module may ask for the same two.
    home = await create_territory(
        settings, db, code=f"eva-{run_id}", name="Event land A", type=TerritoryType.COUNTRY
    )
    remote = await create_territory(
        settings,
        db,
        code=f"evb-{run_id}",
        name="Event land B",
        type=TerritoryType.COUNTRY,
        pod_id=SECOND_POD,
    )
    return EventTerritories(home=home, remote=remote)


@pytest.fixture(scope="module")
async def bus(
    settings: Settings, db: Database, event_territories: EventTerritories
) -> AsyncIterator[EventBus]:
    event_bus = EventBus(settings, db, name="events-tests")
    await event_bus.connect()
    await event_bus.ensure_streams()
    yield event_bus
    await event_bus.close()


@dataclass(frozen=True)
class StoredMessage:
    seq: int
    subject: str
    headers: dict[str, str]
    document: dict[str, Any]

    @property
    def event_id(self) -> str:
        return str(self.document.get("id", ""))


async def stored_messages(bus: EventBus, stream: str) -> list[StoredMessage]:
    """Every message a stream holds, read by sequence number (no consumer involved)."""
    try:
        info = await bus.js.stream_info(stream)
    except NotFoundError:
        return []
    found: list[StoredMessage] = []
    if not info.state.messages:
        return found
    for seq in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            raw = await bus.js.get_msg(stream, seq)
        except NotFoundError:
            continue
        try:
            document = orjson.loads(raw.data or b"{}")
        except orjson.JSONDecodeError:
            document = {}  # a deliberately malformed message of a consumer test
        found.append(
            StoredMessage(
                seq=seq,
                subject=raw.subject or "",
                headers=dict(raw.headers or {}),
                document=document if isinstance(document, dict) else {},
            )
        )
    return found


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 15.0, what: str = "condition"
) -> None:
    """Poll `check` until it holds, failing after `within` seconds."""
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)
