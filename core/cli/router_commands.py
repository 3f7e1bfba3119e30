"""Router commands: `unityplan schema` (the API schema) and `unityplan plan` (a query plan)."""

from __future__ import annotations

from pathlib import Path
from typing import TextIO

import click
from graphql import GraphQLSyntaxError, parse

from core.config import get_settings
from router.planning import OperationError, PlanningError, normalize, plan_operation, print_plan
from router.supergraph import Supergraph, SupergraphError, parse_supergraph


def _load_supergraph(path: str | None) -> Supergraph:
    path = path or get_settings().services.supergraph_path
    if not path:
        raise click.UsageError("Give --supergraph FILE (or set SUPERGRAPH_PATH)")
    try:
        return parse_supergraph(Path(path).read_text(encoding="utf-8"))
    except SupergraphError as exc:
        raise click.ClickException(str(exc)) from exc


_SUPERGRAPH = click.option(
    "--supergraph",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Supergraph SDL file (default SUPERGRAPH_PATH).",
)


@click.command()
@_SUPERGRAPH
@click.option("--output", "-o", type=click.Path(dir_okay=False), default=None, help="Write here.")
def schema(supergraph: str | None, output: str | None) -> None:
    """Print the API schema clients see (no federation machinery, no @inaccessible)."""
    sdl = _load_supergraph(supergraph).api_sdl + "\n"
    if output:
        Path(output).write_text(sdl, encoding="utf-8")
    else:
        click.echo(sdl, nl=False)


@click.command()
@_SUPERGRAPH
@click.option(
    "--operation-name", default=None, help="Operation to plan in a multi-operation document."
)
@click.argument("operation_file", type=click.File("r"))
def plan(
    supergraph: str | None, operation_name: str | None, operation_file: TextIO
) -> None:
    """Print the query plan of the operation in OPERATION_FILE ("-" reads stdin)."""
    graph = _load_supergraph(supergraph)
    try:
        document = parse(operation_file.read())
        click.echo(print_plan(plan_operation(graph, normalize(document, operation_name))))
    except GraphQLSyntaxError as exc:
        raise click.ClickException(f"Syntax error: {exc.message}") from exc
    except (OperationError, PlanningError) as exc:
        raise click.ClickException(str(exc)) from exc


COMMANDS = [schema, plan]
