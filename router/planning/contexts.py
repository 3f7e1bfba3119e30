"""Planning `@fromContext` arguments: their values are read on the nearest ancestor object
that sets the context, and passed to the field as variables of its entity fetch."""

from __future__ import annotations

import re
from typing import TYPE_CHECKING

from router.planning.errors import PlanningError
from router.planning.operation import ConditionTerm, Field
from router.supergraph import FieldSet
from router.supergraph.model import ContextArgument

if TYPE_CHECKING:
    from router.planning.planner import _Planner

ContextUses = list[tuple[str, str, tuple[str, ...], FieldSet]]


def plan_contexts(
    planner: _Planner,
    arguments: tuple[ContextArgument, ...],
    selection: Field,
    path: tuple[str, ...],
    conditions: tuple[ConditionTerm, ...],
) -> tuple[Field, set[int], ContextUses]:
    """Fetch each `@fromContext` value on the nearest ancestor setting its context, and
    pass it to the field as a variable (a placeholder, renamed per fetch)."""
    deps: set[int] = set()
    uses: ContextUses = []
    extra: list[str] = []
    for index, argument in enumerate(arguments):
        ancestor = next(
            (
                entry
                for entry in reversed(planner.ancestry)
                if len(entry[1]) < len(path) and argument.context in contexts_of(planner, entry[0])
            ),
            None,
        )
        if ancestor is None:
            raise PlanningError(
                f"No ancestor of {selection.name} sets the context '{argument.context}'"
            )
        type_name, ancestor_path, group, out = ancestor
        deps |= planner.plan_requirement(
            group, out, type_name, argument.selection, ancestor_path, None, conditions
        )
        deps.add(group.id)
        placeholder = f"contextPlaceholder{index}"
        extra.append(f"{argument.name}: ${placeholder}")
        uses.append((placeholder, argument.type, ancestor_path, argument.selection))
    inner = selection.arguments[1:-1] if selection.arguments else ""
    arguments_text = "(" + ", ".join([p for p in (inner, *extra) if p]) + ")"
    changed = Field(
        selection.response_key,
        selection.name,
        arguments_text,
        selection.directives,
        selection.conditions,
        selection.variables | {u[0] for u in uses},
        selection.selections,
    )
    return changed, deps, uses


def contexts_of(planner: _Planner, type_name: str) -> frozenset[str]:
    info = planner.types[type_name]
    found = set(info.contexts)
    for interface in info.interfaces:
        found |= planner.types[interface].contexts
    for union in planner.types.values():
        if union.kind == "union" and type_name in union.members:
            found |= union.contexts
    return frozenset(found)


def rename_variable(selection: Field, old: str, new: str) -> Field:
    return Field(
        selection.response_key,
        selection.name,
        re.sub(rf"\${old}\b", f"${new}", selection.arguments),
        selection.directives,
        selection.conditions,
        (selection.variables - {old}) | {new},
        selection.selections,
    )
