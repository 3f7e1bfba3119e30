"""`unityplan events streams|relay`: the JetStream streams, and the outbox relay as a process."""

from __future__ import annotations

import asyncio
import contextlib
import signal

import click

from core.config import Settings
from core.db.database import Database
from core.events.bus import EventBus
from core.events.relay import OutboxRelay
from unityplan.cli._failures import quiet_library_warnings
from unityplan.cli._settings import command_settings


def _settings() -> Settings:
    return command_settings("DATABASE_URL", "NATS_URL")


@click.group("events")
def events() -> None:
    """NATS JetStream streams and the transactional outbox relay."""


@events.command("streams")
def streams() -> None:
    """Create or update the global, cross-territory and every territory's stream."""
    quiet_library_warnings()
    settings = _settings()

    async def work() -> list[str]:
        db = Database(settings.database)
        try:
            async with EventBus(settings, db, name="unityplan-cli") as bus:
                infos = await bus.ensure_streams()
        finally:
            await db.dispose()
        return [
            f"{info.config.name}: {', '.join(info.config.subjects or [])}, "
            f"kept {(info.config.max_age or 0) / 86400:g} days, {info.state.messages} messages"
            for info in infos
        ]

    for line in asyncio.run(work()):
        click.echo(line)


@events.command("relay")
@click.option("--batch-size", default=100, show_default=True, help="Events claimed per query.")
def relay(batch_size: int) -> None:
    """Publish outbox events of every schema on every pod until interrupted (Ctrl-C)."""
    settings = _settings()

    async def work() -> None:
        db = Database(settings.database)
        stopping = asyncio.Event()
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGINT, signal.SIGTERM):
            with contextlib.suppress(NotImplementedError):  # not on every platform
                loop.add_signal_handler(signum, stopping.set)
        try:
            async with OutboxRelay(settings, db, batch_size=batch_size):
                click.echo("outbox relay running; Ctrl-C stops it")
                await stopping.wait()
        finally:
            await db.dispose()
        click.echo("outbox relay stopped")

    asyncio.run(work())


COMMANDS = [events]
