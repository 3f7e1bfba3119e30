"""`unityplan demo`: the running development stack end to end, each request and answer shown."""

from __future__ import annotations

import click

from unityplan.cli._settings import command_settings
from unityplan.cli.admin import run_bootstrap
from unityplan.registry import ROUTER


@click.command()
@click.option(
    "--territory",
    "territory_code",
    default="dk",
    show_default=True,
    help="Territory the demo users register in (its bootstrap invitation is used).",
)
def demo(territory_code: str) -> None:
    """Register two users with the dev invitation, log in, query both subgraphs through the
    router, and watch a subscription fire, printing every request and answer.

    Run it beside `make dev`: it finds the running stack (DATABASE_URL and REDIS_URL read the
    invitation, ROUTER_PORT says where the router is).
    """
    from subgraphs.auth.bootstrap import ADMIN_USERNAME
    from unityplan.devstack.walkthrough import Demo, run_walkthrough

    settings = command_settings("DATABASE_URL", "REDIS_URL")
    invitation = run_bootstrap(settings, territory_code, ADMIN_USERNAME)
    host = settings.services.host
    if host in ("0.0.0.0", "::", ""):  # noqa: S104 - only to reach a wildcard bind locally
        host = "127.0.0.1"
    url = f"http://{host}:{ROUTER.port(settings)}/graphql"
    click.echo(
        f"Router: {url}; dev invitation into {territory_code}: {invitation.invitation_token}"
    )
    run_walkthrough(Demo(url, territory_code, invitation.invitation_token), click.echo)


COMMANDS = [demo]
