"""The paths a field can take from the node being planned, and what each costs: the search
that decides where a field is fetched.

From the node of the fetch being built (its type in its subgraph, or a `@provides` copy of
it), a field can be resolved by the field's own edge there (`here`), or by an entity fetch
first: a key edge to another subgraph answering the field (or back into the same subgraph
when its edge there has `@requires` or `@fromContext` conditions), or an interface-object
edge to a subgraph that has the field on one of the object's interfaces. Each path is costed
by the cost model over what it fetches: the jump itself (nothing when a fetch planned at this
path already goes there), the key when it must be fetched first, the target's `@requires`
fetched where the object is now, and everything the field's own selection needs from there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Literal, NamedTuple

from router.planning.capabilities import provided_at
from router.planning.cost import Cost
from router.planning.operation import ConditionTerm, Field, Fragment, Selection
from router.planning.query_graph import Edge, Node
from router.supergraph import FieldInfo, FieldSet

if TYPE_CHECKING:
    from router.planning.groups import FetchGroup
    from router.planning.planner import _Planner

_INTROSPECTION = frozenset({"__schema", "__type", "__typename"})
# What a condition no path can fetch adds to a path: more than any plannable path costs.
_UNPLANNABLE = 1 << 10

PathKind = Literal["here", "key", "interface_object"]
_ZERO = Cost(0, 0)


class PathCost(NamedTuple):
    """Compared in this order: entity fetches the path adds, sequential steps, then the ties:
    the fetch being built first (`kind`: 0 here, 1 key, 2 interface object), the target's
    place in the selection set's cover (its siblings fetched by the same jump), fields of its
    own selection the target leaves to further fetches, and the supergraph's subgraph order."""

    fetches: int
    steps: int
    kind: int
    cover: int
    uncovered: int
    order: int


# A field answered here with no selection below it: nothing to fetch.
_FREE = PathCost(0, 0, 0, 0, 0, 0)


class FieldPath(NamedTuple):
    """One way to resolve a field: in the fetch being built (`here`), or by the jump `edge`
    (its key `edge.conditions`, `key_local` when the current fetch has it) to `target`."""

    cost: PathCost
    kind: PathKind
    target: str
    edge: Edge | None
    key_local: bool
    field: FieldInfo


def field_paths(
    planner: _Planner,
    group: FetchGroup,
    type_name: str,
    selection: Field,
    path: tuple[str, ...],
    provided: FieldSet | None,
    conditions: tuple[ConditionTerm, ...],
) -> list[FieldPath]:
    """The cheapest paths resolving `selection` (with all of its own selection) from the
    object of `type_name` the fetch `group` is at, ties broken; empty when none does.

    The field's own edge is followed when its selection costs no further fetch, or when no
    other subgraph answers the field: no jump can beat that. Otherwise every jump is weighed
    against it, and a tie stays in the fetch being built."""
    info = planner.types[type_name].fields[selection.name]
    here: FieldPath | None = None
    if provided_at(provided, type_name, selection.name) is not None or planner.can_resolve(
        type_name, selection.name, group.subgraph
    ):
        if not selection.selections:
            return [FieldPath(_FREE, "here", group.subgraph, None, True, info)]
        sub_provided = provided_here(planner, type_name, selection, group.subgraph, provided)
        found = _below(
            planner, info.type_name_in(group.subgraph), selection, group.subgraph, sub_provided
        )
        if found is not None:
            cost = PathCost(found.fetches, found.steps, 0, 0, 0, 0)
            here = FieldPath(cost, "here", group.subgraph, None, True, info)
            if not found.fetches or len(info.resolvable_in) <= 1:
                return [here]
    paths = jump_paths(planner, group, type_name, selection, path, provided, conditions)
    if here is not None:
        paths.append(here)
    return paths


def provided_here(
    planner: _Planner,
    type_name: str,
    selection: Field,
    subgraph: str,
    provided: FieldSet | None,
) -> FieldSet | None:
    """What is provided below the field in `subgraph`: by an enclosing `@provides`, or by the
    field's own."""
    found = provided_at(provided, type_name, selection.name)
    if found is not None:
        return found
    source = planner.types[type_name].fields[selection.name].source(subgraph)
    return source.provides if source is not None and source.provides else None


def jump_paths(
    planner: _Planner,
    group: FetchGroup,
    type_name: str,
    selection: Field,
    path: tuple[str, ...],
    provided: FieldSet | None,
    conditions: tuple[ConditionTerm, ...],
) -> list[FieldPath]:
    """The entity fetches that resolve `selection` the cheapest: the query graph's key and
    interface-object edges from the object's node, each followed by the target's edge for
    the field, costed by what they fetch (the jump unless a fetch planned at this path goes
    there already, the key when it must be fetched first, the target's `@requires` fetched
    here, the field's selection from there) and the steps those take one after another.
    Only the jumps tied at the fewest fetches and steps get their tie-breaks weighed."""
    here = group.subgraph
    info = planner.types[type_name].fields[selection.name]
    weighed: list[tuple[tuple[int, int, int], Edge, str, bool, FieldInfo]] = []
    below: dict[tuple[str, str], Cost | None] = {}
    for edge in planner.graph.jumps(Node(type_name, here)):
        tail = edge.tail
        if tail is None:
            continue
        target = tail.subgraph
        field_edge = planner.graph.field_edge(tail, selection.name)
        if edge.kind == "key":
            field = info
            if (
                field_edge is None
                or target not in info.resolvable_in
                or (target == here and not (field_edge.conditions or field_edge.context))
            ):
                continue
        else:
            found_field = planner.types[edge.name].fields.get(selection.name)
            if found_field is None or target not in found_field.resolvable_in:
                continue
            field = found_field
        planner.budget.spend()
        key_local = planner.field_set_local(type_name, edge.conditions, here, provided)
        if edge.kind == "interface_object" and not key_local:
            continue
        where = (target, field.type_name)
        if where not in below:
            below[where] = _below(planner, field.type_name, selection, target, None)
        then = below[where]
        if then is None:
            continue
        key = _ZERO if key_local else _condition_cost(planner, type_name, edge, here, provided)
        first = _ZERO
        if field_edge is not None and field_edge.conditions:
            first = _condition_cost(planner, type_name, field_edge, here, provided)
        existing = planner.find_dependent(target, path, conditions, {group.id})
        fetches = (0 if existing else 1) + key.fetches + first.fetches + then.fetches
        steps = max(key.steps, first.steps) + 1 + then.steps
        rank = (fetches, steps, 1 if edge.kind == "key" else 2)
        weighed.append((rank, edge, target, key_local, field))
    if not weighed:
        return []
    least = min(found[0] for found in weighed)
    paths: list[FieldPath] = []
    for rank, edge, target, key_local, field in weighed:
        if rank != least:
            continue
        cost = PathCost(
            *rank,
            cover=planner.cover_rank(type_name, here, provided, target),
            uncovered=-planner.coverage(field.type_name, selection.selections, target),
            order=planner.order[target],
        )
        kind: PathKind = "key" if edge.kind == "key" else "interface_object"
        paths.append(FieldPath(cost, kind, target, edge, key_local, field))
    return paths


def _below(
    planner: _Planner,
    type_name: str,
    selection: Field,
    subgraph: str,
    provided: FieldSet | None,
) -> Cost | None:
    if not selection.selections:
        return Cost(0, 0)
    return planner.costs.cost(type_name, selection.selections, subgraph, provided)


def _condition_cost(
    planner: _Planner,
    type_name: str,
    edge: Edge,
    subgraph: str,
    provided: FieldSet | None,
) -> Cost:
    """What fetching an edge's conditions (a key, a `@requires`) costs where the object is."""
    conditions = planner.costs.condition_selections(edge)
    found = planner.costs.cost(type_name, conditions, subgraph, provided)
    return found if found is not None else Cost(_UNPLANNABLE, _UNPLANNABLE)


def selection_cover(
    planner: _Planner,
    type_name: str,
    here: str,
    provided: FieldSet | None,
    selections: tuple[Selection, ...],
) -> dict[str, int]:
    """The subgraphs the fields of one selection set that `here` cannot answer are best
    fetched from, ranked: repeatedly the jump target (key or interface object) answering most
    of the fields still uncovered, the supergraph's order on a tie, so that sibling fields
    share one entity fetch. A jump tied with another on fetches and steps goes to the target
    ranked first here."""
    info = planner.types[type_name]
    missing: set[str] = set()
    for field in flat_fields(selections):
        if (
            field.name in info.fields
            and provided_at(provided, type_name, field.name) is None
            and not planner.can_resolve(type_name, field.name, here)
        ):
            missing.add(field.name)
    answers: dict[str, set[str]] = {}
    if missing:
        for target in planner.costs.jump_targets(type_name, here, provided):
            planner.budget.spend()
            owner = planner.types[target.type_name]
            answers[target.subgraph] = {
                name
                for name in missing
                if name in owner.fields and target.subgraph in owner.fields[name].resolvable_in
            }
    ranks: dict[str, int] = {}
    while missing and answers:
        best = max(answers, key=lambda s: (len(answers[s] & missing), -planner.order[s]))
        covered = answers.pop(best) & missing
        if not covered:
            break
        ranks[best] = len(ranks)
        missing -= covered
    return ranks


def flat_fields(selections: tuple[Selection, ...]) -> list[Field]:
    """The fields of a selection set through all its fragments, introspection left out."""
    found: list[Field] = []
    for selection in selections:
        if isinstance(selection, Fragment):
            found.extend(flat_fields(selection.selections))
        elif selection.name not in _INTROSPECTION:
            found.append(selection)
    return found
