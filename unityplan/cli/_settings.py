"""The settings of a `unityplan` command: the configuration, with what is not configured taken
from the development stack running from this checkout (`make dev`, `unityplan infra up`).

Explicit settings always win; without either, the command says in one line what to start.
"""

from __future__ import annotations

from pathlib import Path

import click

from core.config import Settings, get_settings
from core.errors import ConfigError
from unityplan.cli._failures import one_line
from unityplan.devstack.discovery import RunningStack, server_url, with_running_stack


def configured_settings() -> Settings:
    """The configuration as set (environment, `.env`); a bad value ends the command."""
    try:
        return get_settings()
    except ConfigError as exc:
        raise click.ClickException(one_line(str(exc))) from None


def command_settings(*required: str) -> Settings:
    """The settings a command runs with; ends it in one line when a `required` server URL
    (DATABASE_URL, NATS_URL, REDIS_URL) is neither configured nor running."""
    settings, stack = with_running_stack(configured_settings())
    missing = [name for name in required if not server_url(settings, name)]
    if missing:
        raise click.ClickException(_nothing_running(missing, stack, settings.devstack.dir))
    return settings


def _nothing_running(missing: list[str], stack: RunningStack, root: Path) -> str:
    names = " and ".join(missing)
    verb = "is" if len(missing) == 1 else "are"
    where = f"from {root}" if stack.empty else f"with all its servers from {root}"
    return (
        f"{names} {verb} not set and no development stack runs {where}: "
        f"start one with `make dev` (or `unityplan infra up`) in another terminal, "
        f"or set {names}"
    )
