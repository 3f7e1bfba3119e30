"""`unityplan retention run`: the daily retention job of time series on plain PostgreSQL."""

from __future__ import annotations

import asyncio

import click

from core.db.database import Database
from core.db.retention import RetentionRun, apply_retention
from unityplan.cli._settings import command_settings


@click.group("retention")
def retention() -> None:
    """Retention of the time series (audit log, login events)."""


@retention.command("run")
def run() -> None:
    """Delete audit-log and login-event rows past their retention, in every territory.

    Territories on TimescaleDB have retention policies of their own and are skipped.
    """
    settings = command_settings("DATABASE_URL")

    async def apply() -> list[RetentionRun]:
        db = Database(settings.database)
        try:
            return await apply_retention(db)
        finally:
            await db.dispose()

    for outcome in asyncio.run(apply()):
        if outcome.removed is None:
            click.echo(f"{outcome.territory}: TimescaleDB retention policies (nothing to do)")
        else:
            click.echo(f"{outcome.territory}: {outcome.removed} expired rows removed")


COMMANDS = [retention]
