"""The `unityplan` command: run the stack, migrate, manage territories, serve and compose.

Each module of this package contributes its commands through a module-level `COMMANDS` list,
so a concern's commands live beside each other; `_register` names the modules. Every command
ends a failure in one line (see `_failures`).
"""

from __future__ import annotations

import click

from unityplan.cli._failures import (
    LONG_RUNNING,
    TRACEBACK_FLAG,
    OneLineGroup,
    quiet_library_warnings,
)


@click.group(cls=OneLineGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    TRACEBACK_FLAG, "traceback", is_flag=True, help="Show the traceback of an unexpected failure."
)
@click.pass_context
def main(ctx: click.Context, traceback: bool) -> None:
    """UnityPlan backend."""
    if ctx.invoked_subcommand not in LONG_RUNNING:
        quiet_library_warnings()


def _register() -> None:
    # Imported here, after `main` exists: the command modules are this package's own.
    from unityplan.cli import admin, db, demo, dev, events, retention, router_commands, serve

    for module in (admin, db, demo, dev, events, retention, router_commands, serve):
        for command in module.COMMANDS:
            main.add_command(command)


_register()
