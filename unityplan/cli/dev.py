"""`unityplan dev` (the whole stack, as `make dev` runs it) and `unityplan infra up|down|status`."""

from __future__ import annotations

import sys

import click

from core.errors import InfrastructureError
from unityplan.cli._settings import configured_settings
from unityplan.devstack.servers import SERVER_TYPES


@click.command()
@click.option(
    "--replicas",
    type=click.IntRange(1, 8),
    default=1,
    show_default=True,
    help="Run each of auth, user and router this many times (replica k on the next ports).",
)
def dev(replicas: int) -> None:
    """Start infrastructure, migrate, provision the demo territory, run every service.

    Servers not configured by DATABASE_URL, NATS_URL or REDIS_URL are started embedded, with
    their data under DEVSTACK_DIR. Ctrl-C stops everything this command started. With
    `--replicas N`, replica k runs auth and user on their ports + 2(k-1) and the router on its
    port + (k-1), composing from the subgraphs of its own replica set.
    """
    from unityplan.devstack.dev import run_dev

    sys.exit(run_dev(configured_settings(), sys.stdout, replicas))


@click.group()
def infra() -> None:
    """The embedded PostgreSQL, NATS and Redis alone, for services run from an IDE."""


@infra.command()
def up() -> None:
    """Start the embedded servers in the background (data under DEVSTACK_DIR)."""
    from unityplan.devstack import EmbeddedStack
    from unityplan.devstack.dev import display_url

    dev_settings = configured_settings().devstack
    stack = EmbeddedStack(
        dev_settings.dir,
        postgres_port=dev_settings.postgres_port,
        nats_port=dev_settings.nats_port,
        redis_port=dev_settings.redis_port,
    )
    try:
        urls = stack.start()
    except InfrastructureError as exc:
        raise click.ClickException(str(exc)) from exc
    stack.detach()
    click.echo(f"DATABASE_URL={display_url(urls.database_url)}")
    click.echo(f"NATS_URL={urls.nats_url}")
    click.echo(f"REDIS_URL={urls.redis_url}")
    click.echo("Running in the background; `unityplan infra down` stops them.")


@infra.command()
def down() -> None:
    """Stop the embedded servers started by `infra up` (or left by a crashed run)."""
    from unityplan.devstack import stop_recorded

    stopped = stop_recorded(configured_settings().devstack.dir)
    click.echo(f"Stopped: {', '.join(stopped)}" if stopped else "Nothing was running.")


@infra.command()
def status() -> None:
    """Which embedded servers and services run from DEVSTACK_DIR, with pid, port and address."""
    from unityplan.devstack import recorded_servers
    from unityplan.devstack.dev import display_url
    from unityplan.devstack.discovery import URL_VARIABLES, recorded_services

    dev_settings = configured_settings().devstack
    servers = recorded_servers(dev_settings.dir)
    services = recorded_services(dev_settings.dir)
    if not servers and not services:
        click.echo(f"Nothing recorded in {dev_settings.dir}: start it with `make dev`.")
    for record, alive in servers:
        state = "running" if alive else "not running (stale record)"
        url = SERVER_TYPES[record.name](dev_settings.dir, record.port).url()
        address = f"{URL_VARIABLES[record.name]}={display_url(url)}" if alive else ""
        click.echo(
            f"{record.name:<9} pid {record.pid:<8} port {record.port:<6} {state:<8} {address}"
        )
    for record, alive in services:
        state = "running" if alive else "not running (stale record)"
        address = f"http://127.0.0.1:{record.port}/graphql" if alive else ""
        click.echo(
            f"{record.name:<9} pid {record.pid:<8} port {record.port:<6} {state:<8} {address}"
        )


COMMANDS = [dev, infra]
