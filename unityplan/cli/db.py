"""`unityplan migrate` and `unityplan territory create|list`: schemas and the territory registry."""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

import click

from core.config import Settings
from core.db.database import Database
from core.db.migrations import MigrationOutcome, migrate_all_report
from core.db.provisioning import create_territory
from core.db.territories import Territory, TerritoryType
from unityplan.cli._settings import command_settings

T = TypeVar("T")


def _run(work: Callable[[Settings], Coroutine[Any, Any, T]]) -> T:
    """Run `work` with the database of the configuration or of the running development stack."""
    return asyncio.run(work(command_settings("DATABASE_URL")))


def _describe(outcome: MigrationOutcome) -> str:
    where = f"{outcome.schema} on pod {outcome.pod_id}"
    if outcome.changed:
        return f"{where}: upgraded {outcome.before or '(empty)'} -> {outcome.after}"
    return f"{where}: up to date at {outcome.after}"


@click.command()
def migrate() -> None:
    """Upgrade the global schema and every registered territory (safe to repeat)."""
    outcomes = _run(migrate_all_report)
    for outcome in outcomes:
        click.echo(_describe(outcome))
    changed = sum(outcome.changed for outcome in outcomes)
    click.echo(f"{len(outcomes)} schema(s) checked, {changed} upgraded.")


@click.group()
def territory() -> None:
    """Create and list territories."""


@territory.command("create")
@click.argument("code")
@click.option("--name", required=True, help="Display name, e.g. Denmark.")
@click.option(
    "--type",
    "territory_type",
    required=True,
    type=click.Choice([t.value for t in TerritoryType]),
    help="country, first_nation or community.",
)
@click.option("--parent", default=None, help="Parent territory code (communities only).")
@click.option("--pod", default=None, help="Pod id (default: the default pod).")
@click.option("--timezone", default=None, help="IANA time zone, e.g. Europe/Copenhagen.")
@click.option("--locale", default=None, help="Locale, e.g. da_DK.")
@click.option("--language", default=None, help="Default language, e.g. da.")
def create(
    code: str,
    name: str,
    territory_type: str,
    parent: str | None,
    pod: str | None,
    timezone: str | None,
    locale: str | None,
    language: str | None,
) -> None:
    """Register territory CODE, create its schema on its pod and migrate it (safe to repeat)."""

    async def work(settings: Settings) -> Territory:
        from core.db.migrations import migrate_global

        # The registry lives in `global`; a fresh database gets it here rather than failing.
        await migrate_global(settings)
        db = Database(settings.database)
        try:
            return await create_territory(
                settings,
                db,
                code=code,
                name=name,
                type=territory_type,
                parent_code=parent,
                pod_id=pod,
                timezone=timezone,
                locale=locale,
                default_language=language,
            )
        finally:
            await db.dispose()

    created = _run(work)
    click.echo(
        f"Territory {created.code} ({created.name}, {created.type.value}) is ready "
        f"in schema {created.schema} on pod {created.pod_id}."
    )


@territory.command("list")
@click.option("--all", "include_inactive", is_flag=True, help="Include inactive territories.")
def list_territories(include_inactive: bool) -> None:
    """List registered territories."""

    async def work(settings: Settings) -> list[Territory]:
        db = Database(settings.database)
        try:
            return await db.territories(include_inactive=include_inactive)
        finally:
            await db.dispose()

    found = _run(work)
    if not found:
        click.echo("No territories. Create one with `unityplan territory create`.")
        return
    rows = [("CODE", "NAME", "TYPE", "PARENT", "POD", "SCHEMA", "ACTIVE")] + [
        (
            t.code,
            t.name,
            t.type.value,
            t.parent_code or "-",
            t.pod_id,
            t.schema,
            "yes" if t.is_active else "no",
        )
        for t in found
    ]
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    for row in rows:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


COMMANDS = [migrate, territory]
