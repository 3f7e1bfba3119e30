"""`unityplan admin bootstrap`: a first platform admin and invitation, so a territory is usable
without SQL."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING

import click

from core.config import Settings
from core.errors import NotFound
from unityplan.cli._settings import command_settings

if TYPE_CHECKING:
    from subgraphs.auth.bootstrap import BootstrapResult


def run_bootstrap(settings: Settings, territory_code: str, username: str) -> BootstrapResult:
    """`bootstrap_territory`, with what to do about a territory that does not exist yet."""
    from subgraphs.auth.bootstrap import bootstrap_territory

    try:
        return asyncio.run(bootstrap_territory(settings, territory_code, admin_username=username))
    except NotFound as exc:
        if exc.extensions.get("field") != "territoryCode":
            raise
        raise click.ClickException(
            f"{exc.message}: {territory_code} (create it first: "
            f"unityplan territory create {territory_code} ...)"
        ) from None


@click.group()
def admin() -> None:
    """Platform administration."""


@admin.command()
@click.option(
    "--territory",
    "territory_code",
    default="dk",
    show_default=True,
    help="Territory the admin belongs to and the invitation is for.",
)
@click.option("--username", default="admin", show_default=True, help="The admin's username.")
def bootstrap(territory_code: str, username: str) -> None:
    """Create the platform admin (once) and print a valid GROUP invitation into the territory.

    A new admin lives in the territory; its generated password is written to
    DEVSTACK_DIR/admin-password (admin-password-USERNAME for other names) and never
    overwritten. An existing admin, of any territory, invites into this one.
    """
    result = run_bootstrap(command_settings("DATABASE_URL", "REDIS_URL"), territory_code, username)
    state = "created" if result.admin_created else "already existed"
    click.echo(f"Platform admin '{result.admin_username}' {state} in {result.admin_territory}.")
    if result.admin_password_file is not None:
        click.echo(f"Password file: {result.admin_password_file}")
    click.echo(
        f"Invitation token: {result.invitation_token} (into {result.territory_code}, "
        f"expires {result.invitation_expires_at})"
    )


COMMANDS = [admin]
