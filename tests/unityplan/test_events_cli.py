"""`unityplan events streams` and `unityplan events relay` against the test servers."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner
from sqlalchemy import select

from core.config import Settings
from core.db import Database
from core.db.tables import outbox
from core.events import enqueue
from core.events.subjects import territory_subject
from tests.core.test_events_fixtures import EventTerritories, eventually
from unityplan.cli import main

# The shared fixtures (db, event_territories) come from this plugin module.
pytest_plugins = ["tests.core.test_events_fixtures"]


def test_streams_command_lists_every_stream(
    settings: Settings,
    event_territories: EventTerritories,
    run_id: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr("unityplan.cli._settings.get_settings", lambda: settings)
    result = CliRunner().invoke(main, ["events", "streams"])
    assert result.exit_code == 0, result.output
    prefix = run_id.upper()
    assert f"{prefix}_GLOBAL_EVENTS: {run_id}.global.>" in result.output
    assert f"{prefix}_CROSS_TERRITORY: {run_id}.cross.>" in result.output
    home = event_territories.home.code
    assert f"{prefix}_TERRITORY_{home.upper().replace('-', '_')}: {run_id}.territory.{home}.>" in (
        result.output
    )


async def test_relay_command_publishes_and_stops_on_sigint(
    settings: Settings, db: Database, event_territories: EventTerritories, tmp_path: Path
) -> None:
    env = {
        **os.environ,
        "DATABASE_URL": settings.database.url,
        "POD_DATABASE_URLS": json.dumps(settings.database.pod_urls),
        "NATS_URL": settings.nats.url,
        "EVENTS_NAMESPACE": settings.nats.namespace,
        "OUTBOX_POLL_INTERVAL_SECONDS": "0.05",
        "LOG_FORMAT": "console",
    }
    # Run outside the checkout, so a developer's .env cannot redirect the process.
    process = await asyncio.create_subprocess_exec(
        str(Path(sys.executable).with_name("unityplan")), "events", "relay",
        cwd=tmp_path, env=env, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.STDOUT,
    )  # fmt: skip
    try:
        code = event_territories.home.code
        async with db.territory_session(code) as session:
            event = await enqueue(
                session,
                subject=territory_subject(code, "test", "relayed"),
                type="org.unityplan.test.relayed",
                source="/tests/cli",
                data={},
            )

        async def sent() -> bool:
            async with db.territory_session(code) as session:
                stamp = await session.scalar(
                    select(outbox.c.sent_at).where(outbox.c.id == event.id)
                )
            return stamp is not None

        await eventually(sent, within=30, what="the relay process to publish the event")
    finally:
        process.send_signal(signal.SIGINT)
        output, _ = await asyncio.wait_for(process.communicate(), 20)
    assert process.returncode == 0, output.decode()
    assert b"outbox relay stopped" in output
