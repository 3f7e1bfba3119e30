"""Every fetch of a plan checked against the schema of the subgraph it goes to, before the
plan leaves the planner: a fetch the subgraph would refuse is a planning error, not a request.

The check walks the fetch's selections with the subgraph's own types (`Supergraph.
subgraph_sdls`): every field exists on its parent there, composite fields have a selection
and leaves none, and every fragment's type exists there and can overlap its parent. Fields
that would not merge are aliased apart before (`conflicts.py`). A full GraphQL validation
per fetch would cost more than planning itself.
"""

from __future__ import annotations

from graphql import (
    GraphQLError,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    GraphQLUnionType,
    build_schema,
    get_named_type,
    is_composite_type,
)

from router.planning.errors import PlanningError
from router.planning.selections import OutField, OutSelections
from router.supergraph import Supergraph

_Composite = GraphQLObjectType | GraphQLInterfaceType | GraphQLUnionType

# Per (supergraph hash, subgraph), its schema; None when its SDL could not be built.
_SCHEMAS: dict[tuple[str, str], GraphQLSchema | None] = {}


def subgraph_schema(supergraph: Supergraph, subgraph: str) -> GraphQLSchema | None:
    key = (supergraph.hash, subgraph)
    if key not in _SCHEMAS:
        if len(_SCHEMAS) > 512:
            _SCHEMAS.clear()
        sdl = supergraph.subgraph_sdls.get(subgraph)
        try:
            # Only documents are checked: a slice may leave an interface's field to another
            # subgraph, which schema validation would refuse.
            _SCHEMAS[key] = build_schema(sdl, assume_valid=True) if sdl else None
        except (GraphQLError, TypeError):
            _SCHEMAS[key] = None
    return _SCHEMAS[key]


class _Checker:
    def __init__(self, schema: GraphQLSchema, subgraph: str) -> None:
        self.schema = schema
        self.subgraph = subgraph

    def fail(self, why: str) -> PlanningError:
        return PlanningError(f"The plan's fetch to subgraph '{self.subgraph}' is invalid: {why}")

    def possible(self, type_: _Composite) -> set[str]:
        if isinstance(type_, GraphQLObjectType):
            return {type_.name}
        return {t.name for t in self.schema.get_possible_types(type_)}

    def check(self, parent: _Composite, selections: OutSelections) -> None:
        for item in selections.items.values():
            if not isinstance(item, OutField):
                condition = self.schema.get_type(item.type_condition)
                if not isinstance(condition, _Composite):
                    raise self.fail(f"unknown type {item.type_condition}")
                if not self.possible(condition) & self.possible(parent):
                    raise self.fail(
                        f"objects of type {parent.name} can never be of type {condition.name}"
                    )
                self.check(condition, item.selections)
                continue
            if item.name == "__typename":
                continue
            fields = parent.fields if not isinstance(parent, GraphQLUnionType) else {}
            field = fields.get(item.name)
            if field is None:
                raise self.fail(f"no field {parent.name}.{item.name}")
            named = get_named_type(field.type)
            if is_composite_type(named):
                if not item.selections:
                    raise self.fail(f"{parent.name}.{item.name} needs a selection")
                self.check(named, item.selections)
            elif item.selections:
                raise self.fail(f"{parent.name}.{item.name} is a leaf and takes no selection")


def check_fetch(
    supergraph: Supergraph, subgraph: str, parent: str, selections: OutSelections
) -> None:
    """Raise `PlanningError` when `subgraph` would refuse `selections` on its type `parent`
    (the root type, or `_Entity` for an entity fetch)."""
    schema = subgraph_schema(supergraph, subgraph)
    if schema is None:
        return
    root = schema.get_type(parent)
    if not isinstance(root, _Composite):
        raise _Checker(schema, subgraph).fail(f"it has no type {parent}")
    _Checker(schema, subgraph).check(root, selections)
