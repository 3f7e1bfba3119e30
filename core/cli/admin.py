"""`unityplan admin bootstrap`: a first platform admin and invitation, so a territory is usable
without SQL."""

from __future__ import annotations

import asyncio

import click

from core.cli._settings import command_settings
from core.errors import NotFound


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
    from subgraphs.auth.bootstrap import bootstrap_territory

    settings = command_settings("DATABASE_URL", "REDIS_URL")
    try:
        result = asyncio.run(bootstrap_territory(settings, territory_code, admin_username=username))
    except NotFound as exc:
        if exc.extensions.get("field") != "territoryCode":
            raise
        raise click.ClickException(
            f"{exc.message}: {territory_code} (create it first: "
            f"unityplan territory create {territory_code} ...)"
        ) from None
    state = "created" if result.admin_created else "already existed"
    click.echo(f"Platform admin '{result.admin_username}' {state} in {result.admin_territory}.")
    if result.admin_password_file is not None:
        click.echo(f"Password file: {result.admin_password_file}")
    click.echo(
        f"Invitation token: {result.invitation_token} (into {result.territory_code}, "
        f"expires {result.invitation_expires_at})"
    )


COMMANDS = [admin]
