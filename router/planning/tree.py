"""Turning the planner's fetch groups into the frozen plan tree and subgraph documents."""

from __future__ import annotations

from router.planning.conflicts import alias_conflicts
from router.planning.groups import FetchGroup
from router.planning.nodes import (
    Condition,
    ContextUse,
    Fetch,
    Flatten,
    Parallel,
    PlanNode,
    QueryPlan,
    Sequence,
)
from router.planning.operation import NormalizedOperation
from router.planning.validation import check_fetch
from router.supergraph import Supergraph


def _document(
    group: FetchGroup, number: int, operation: NormalizedOperation, selections: str
) -> tuple[str, tuple[str, ...]]:
    contextual = {use[0]: use[1] for use in group.context_uses}
    usages = tuple(sorted(set(group.selections.variables()) - set(contextual)))
    definitions = [operation.variable_definitions[name] for name in usages]
    definitions += [f"${name}: {type_}" for name, type_ in contextual.items()]
    name = f"{operation.name}__{group.subgraph}__{number}" if operation.name else ""
    if group.is_entity:
        definitions.insert(0, "$representations: [_Any!]!")
        body = "{ _entities(representations: $representations) " + selections + " }"
        kind = "query"
    else:
        body = selections
        kind = operation.kind
    head = kind + (" " + name if name else "")
    if definitions:
        head += "(" + ", ".join(definitions) + ")"
    return f"{head} {body}", usages


def _node(
    group: FetchGroup, number: int, operation: NormalizedOperation, supergraph: Supergraph
) -> PlanNode:
    root = None if group.is_entity else supergraph.root_type(operation.kind)
    renames = alias_conflicts(supergraph, group.subgraph, root, group.selections)
    check_fetch(supergraph, group.subgraph, root or "_Entity", group.selections)
    selections = group.selections.print()
    text, usages = _document(group, number, operation, selections)
    fetch = Fetch(
        id=number,
        subgraph=group.subgraph,
        operation=text,
        operation_kind="query" if group.is_entity else operation.kind,
        variable_usages=usages,
        requires=group.requirements() if group.is_entity else {},
        key_fields={t: frozenset(k) for t, k in group.key_fields.items()},
        input_rewrites=dict(group.typename_rewrites),
        refines_typename=group.refines_typename,
        context_uses=tuple(
            ContextUse(variable, type_, path, selection)
            for variable, type_, path, selection in group.context_uses
        ),
        requires_text=group.requires.print() if group.is_entity else "",
        entity_selection=selections if group.is_entity else "",
        output_renames=renames,
    )
    node: PlanNode = Flatten(group.path, fetch) if group.is_entity else fetch
    for variable, wanted in reversed(group.conditions):
        node = Condition(variable, node, None) if wanted else Condition(variable, None, node)
    return node


def _levels(groups: list[FetchGroup]) -> list[list[FetchGroup]]:
    by_id = {group.id: group for group in groups}
    level: dict[int, int] = {}

    def depth(group: FetchGroup) -> int:
        if group.id not in level:
            parents = [by_id[d] for d in group.depends_on if d in by_id]
            level[group.id] = 1 + max((depth(p) for p in parents), default=-1)
        return level[group.id]

    layered: dict[int, list[FetchGroup]] = {}
    for group in groups:
        if group.selections:
            layered.setdefault(depth(group), []).append(group)
    return [layered[index] for index in sorted(layered)]


def _combine(kind: type[Sequence] | type[Parallel], nodes: list[PlanNode]) -> PlanNode | None:
    if not nodes:
        return None
    return nodes[0] if len(nodes) == 1 else kind(tuple(nodes))


def build_plan(
    operation: NormalizedOperation, runs: list[list[FetchGroup]], supergraph: Supergraph
) -> QueryPlan:
    steps: list[PlanNode] = []
    numbers = iter(range(1_000_000))  # fetches are numbered in plan order, for stable names
    for groups in runs:
        layers = [
            _combine(
                Parallel,
                [_node(group, next(numbers), operation, supergraph) for group in layer],
            )
            for layer in _levels(groups)
        ]
        run = _combine(Sequence, [layer for layer in layers if layer is not None])
        if run is not None:
            steps.append(run)
    node = _combine(Sequence, steps)
    # Flatten nested Sequences produced by mutation runs for a simpler tree.
    if isinstance(node, Sequence):
        flat: list[PlanNode] = []
        for step in node.nodes:
            flat.extend(step.nodes if isinstance(step, Sequence) else (step,))
        node = Sequence(tuple(flat))
    return QueryPlan(operation.kind, node, dict(operation.variable_definitions))
