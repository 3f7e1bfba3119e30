"""`unityplan admin bootstrap`: a first platform admin and invitation, so a territory is usable
without SQL."""

from __future__ import annotations

import asyncio

import click

from core.config import get_settings
from core.errors import ConfigError, InfrastructureError, UnityPlanError


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
    """Create the platform admin (once) and print a valid GROUP invitation.

    The admin's generated password is written to DEVSTACK_DIR/admin-password on first run.
    """
    from subgraphs.auth.bootstrap import bootstrap_territory

    try:
        settings = get_settings()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    if not settings.database.url or not settings.redis.url:
        raise click.ClickException(
            "DATABASE_URL and REDIS_URL must be set (or run `unityplan dev`, which bootstraps "
            "the demo territory itself)"
        )
    try:
        result = asyncio.run(bootstrap_territory(settings, territory_code, admin_username=username))
    except UnityPlanError as exc:
        raise click.ClickException(
            f"{exc.message} (create it first: unityplan territory create {territory_code} ...)"
        ) from None
    except (InfrastructureError, OSError) as exc:
        raise click.ClickException(f"Infrastructure unavailable: {exc}") from None
    state = "created" if result.admin_created else "already existed"
    click.echo(f"Platform admin '{result.admin_username}' {state} in {result.territory_code}.")
    click.echo(f"Password file: {result.admin_password_file}")
    click.echo(
        f"Invitation token: {result.invitation_token} (expires {result.invitation_expires_at})"
    )


COMMANDS = [admin]
