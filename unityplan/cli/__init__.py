"""The `unityplan` command: run the stack, migrate, manage territories, serve and compose.

Each module of this package contributes its commands through a module-level `COMMANDS` list,
so a concern's commands live beside each other and the entry point never needs editing. Every
command ends a failure in one line (see `_failures`).
"""

from __future__ import annotations

import importlib
import pkgutil

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
    for module_info in sorted(pkgutil.iter_modules(__path__), key=lambda m: m.name):
        if module_info.name.startswith("_"):
            continue
        module = importlib.import_module(f"{__name__}.{module_info.name}")
        for command in getattr(module, "COMMANDS", []):
            main.add_command(command)


_register()
