"""Router commands: `unityplan compose` (the supergraph), `unityplan schema` (the API schema
clients see, `schema.graphql`) and `unityplan plan` (the query plan of an operation)."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import TextIO

import click
from graphql import GraphQLSyntaxError, parse

from core.errors import ConfigError
from core.security.router_proof import RouterSigner
from router.composition import CompositionError, SubgraphDefinition, compose
from router.composition.remote import SubgraphUnavailable, fetch_subgraphs
from router.planning import OperationError, PlanningError, normalize, plan_operation, print_plan
from router.planning.planner import plan_subscription
from router.planning.subscription import split_plan
from router.supergraph import Supergraph, SupergraphError, parse_supergraph
from unityplan.cli._settings import configured_settings
from unityplan.devstack.discovery import with_running_stack
from unityplan.registry import subgraph_urls, subgraphs


def local_subgraph_definitions() -> list[SubgraphDefinition]:
    """The SDLs of the registry's subgraphs, read in-process (URLs from the settings)."""
    settings = configured_settings()
    found = []
    for subgraph in subgraphs():
        result = subgraph.schema().execute_sync("{ _service { sdl } }")
        if result.errors:
            raise click.ClickException(
                f"{subgraph.name}: cannot read its SDL: {result.errors[0].message}"
            )
        sdl = result.data["_service"]["sdl"] if result.data else ""
        found.append(SubgraphDefinition(subgraph.name, subgraph.url(settings), sdl))
    return found


def compose_local() -> str:
    try:
        return compose(local_subgraph_definitions())
    except CompositionError as exc:
        raise click.ClickException(str(exc)) from exc


def _load_supergraph(path: str | None) -> Supergraph:
    path = path or configured_settings().services.supergraph_path
    try:
        if not path:
            return parse_supergraph(compose_local())
        return parse_supergraph(Path(path).read_text(encoding="utf-8"))
    except SupergraphError as exc:
        raise click.ClickException(str(exc)) from exc


@click.command("compose")
@click.option(
    "--running",
    is_flag=True,
    help="Ask the running subgraphs (`_service { sdl }` at their configured URLs) "
    "instead of reading their schemas in-process.",
)
def compose_command(running: bool) -> None:
    """Print the supergraph SDL composed from the registry's subgraphs."""
    if not running:
        click.echo(compose_local(), nl=False)
        return
    settings = with_running_stack(configured_settings())[0]
    urls = subgraph_urls(settings)
    try:
        signer = RouterSigner.from_settings(settings)
        definitions = asyncio.run(fetch_subgraphs(urls, signer=signer))
        click.echo(compose(definitions), nl=False)
    except (SubgraphUnavailable, CompositionError, ConfigError) as exc:
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
    """Print the API schema clients see (default: of our composed subgraphs)."""
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
def plan(supergraph: str | None, operation_name: str | None, operation_file: TextIO) -> None:
    """Print the query plan of the operation in OPERATION_FILE ("-" reads stdin)."""
    graph = _load_supergraph(supergraph)
    try:
        operation = normalize(parse(operation_file.read()), operation_name)
        if operation.kind == "subscription":
            # The upstream subscription, and what runs again for every event.
            click.echo(split_plan(plan_subscription(graph, operation)).print())
        else:
            click.echo(print_plan(plan_operation(graph, operation)))
    except GraphQLSyntaxError as exc:
        raise click.ClickException(f"Syntax error: {exc.message}") from exc
    except (OperationError, PlanningError) as exc:
        raise click.ClickException(str(exc)) from exc


COMMANDS = [compose_command, schema, plan]
