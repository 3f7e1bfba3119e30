"""Composition: subgraph SDLs (`_service { sdl }`) in, one standard supergraph SDL out. Pure."""

from __future__ import annotations

from router.composition.schema_merge import Composer
from router.composition.subgraph import SubgraphDefinition, SubgraphSyntaxError, read_subgraph
from router.composition.supergraph_printer import print_supergraph
from router.supergraph import SupergraphError, parse_supergraph


class CompositionError(Exception):
    """Subgraphs that do not compose; `errors` lists every problem, naming subgraph and element."""

    def __init__(self, errors: list[str]) -> None:
        super().__init__("Composition failed:\n" + "\n".join(f"- {e}" for e in errors))
        self.errors = errors


def compose(definitions: list[SubgraphDefinition]) -> str:
    """The supergraph SDL of `definitions` (subgraphs ordered by name); raises CompositionError."""
    errors: list[str] = []
    schemas = []
    for definition in sorted(definitions, key=lambda d: d.name):
        try:
            schemas.append(read_subgraph(definition))
        except SubgraphSyntaxError as exc:
            errors.append(str(exc))
    if errors:
        raise CompositionError(errors)
    composer = Composer(schemas)
    types = composer.compose()
    if composer.errors:
        raise CompositionError(composer.errors)
    sdl = print_supergraph(
        schemas,
        types,
        uses_inaccessible=composer.uses_inaccessible,
        uses_tag=composer.uses_tag,
        uses_context=composer.uses_context,
    )
    try:
        parse_supergraph(sdl)
    except SupergraphError as exc:
        raise CompositionError([str(exc)]) from exc
    return sdl


__all__ = ["CompositionError", "SubgraphDefinition", "compose"]
