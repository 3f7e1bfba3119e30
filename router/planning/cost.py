"""The planner's cost model: how many entity fetches, then how many sequential steps, resolving
a selection from a subgraph takes, found by a search over the query graph's paths (field edges,
key and interface-object jumps; a field's `@requires` and `@fromContext` conditions count as
the fetches they take). Where a field could be resolved in more than one way, the planner takes
the cheapest; what no path reaches is None."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, NamedTuple

from router.planning.capabilities import provided_at
from router.planning.groups import field_set_selections
from router.planning.operation import Field, Fragment, Selection
from router.planning.query_graph import Edge, Node
from router.supergraph import FieldInfo, FieldSet

if TYPE_CHECKING:
    from router.planning.capabilities import Capabilities

_INTROSPECTION = frozenset({"__schema", "__type", "__typename"})
# Paths longer than this are not searched: their fields are counted as resolvable in place.
_MAX_DEPTH = 6


class Cost(NamedTuple):
    """What a way of resolving a selection costs the plan, compared in this order."""

    fetches: int
    steps: int


@dataclass(frozen=True, slots=True)
class _Paths:
    """The entity fetches a selection takes (relative path, subgraph) and the longest chain
    of fetches that must run one after another."""

    fetches: frozenset[tuple[tuple[str, ...], str]]
    steps: int


_LOCAL = _Paths(frozenset(), 0)


class CostModel:
    """Estimates over one planning's query graph, memoized per (type, selection, subgraph)."""

    def __init__(self, capabilities: Capabilities) -> None:
        self.caps = capabilities
        self._memo: dict[tuple[str, int, str, int], tuple[_Paths | None, object]] = {}
        self._targets: dict[tuple[str, str, int], tuple[list[JumpTarget], object]] = {}
        self._conditions: dict[Edge, tuple[Selection, ...]] = {}
        self._requirements: dict[tuple[str, str, str], Edge | None] = {}

    def cost(
        self,
        type_name: str,
        selections: tuple[Selection, ...],
        subgraph: str,
        provided: FieldSet | None,
    ) -> Cost | None:
        """The fewest entity fetches (and their sequential steps) resolving `selections` on a
        value of `type_name` from `subgraph` takes; None when some field cannot be reached."""
        found = self._paths(type_name, selections, subgraph, provided, 0)
        return None if found is None else Cost(len(found.fetches), found.steps)

    def reaches(
        self,
        type_name: str,
        selections: tuple[Selection, ...],
        subgraph: str,
        provided: FieldSet | None,
    ) -> bool:
        """Whether some path of the query graph from `subgraph` resolves every selected field."""
        return self._paths(type_name, selections, subgraph, provided, 0) is not None

    def partition(
        self,
        type_name: str,
        selections: tuple[Selection, ...],
        subgraph: str,
        provided: FieldSet | None,
    ) -> tuple[tuple[Selection, ...], tuple[Selection, ...]]:
        """The selections some path from `subgraph` resolves, and the rest; a field the
        subgraph answers whose own selection it reaches only in part is cut in two."""
        part: list[Selection] = []
        rest: list[Selection] = []
        info = self.caps.types.get(type_name)
        for selection in selections:
            if isinstance(selection, Fragment):
                condition = selection.type_condition or type_name
                inner, outer = self.partition(condition, selection.selections, subgraph, provided)
                if inner:
                    part.append(replace(selection, selections=inner))
                if outer:
                    rest.append(replace(selection, selections=outer))
                continue
            if selection.name == "__typename" or self.reaches(
                type_name, (selection,), subgraph, provided
            ):
                part.append(selection)
                continue
            field = info.fields.get(selection.name) if info is not None else None
            sub_provided = provided_at(provided, type_name, selection.name)
            if (
                field is not None
                and info is not None
                and info.kind == "object"
                and selection.selections
                and (
                    sub_provided is not None
                    or self.caps.can_resolve(type_name, selection.name, subgraph)
                )
            ):
                inner, outer = self.partition(
                    field.type_name, selection.selections, subgraph, sub_provided
                )
                if inner:
                    part.append(replace(selection, selections=inner))
                rest.append(replace(selection, selections=outer))
                continue
            rest.append(selection)
        return tuple(part), tuple(rest)

    def _paths(
        self,
        type_name: str,
        selections: tuple[Selection, ...],
        subgraph: str,
        provided: FieldSet | None,
        depth: int,
    ) -> _Paths | None:
        info = self.caps.types.get(type_name)
        if info is None or depth > _MAX_DEPTH or not selections:
            return _LOCAL
        if info.kind not in ("object", "interface", "union"):
            return _LOCAL
        key = (type_name, id(selections), subgraph, id(provided))
        memo = self._memo.get(key)
        if memo is not None:
            return memo[0]
        if info.kind == "object":
            found = self._object_paths(type_name, selections, subgraph, provided, depth)
        elif subgraph in info.interface_object_in:
            # The subgraph knows the interface as one object type: its fields are followed
            # as an object's, and a selection asking for the object's own type takes one
            # fetch from a subgraph that has the interface.
            found = self._object_paths(type_name, selections, subgraph, provided, depth)
            if found is not None and needs_object_type(type_name, selections):
                owner = self._interface_owner(type_name, subgraph)
                if owner is None:
                    found = None
                else:
                    found = _Paths(found.fetches | {((), owner)}, found.steps + 1)
        else:
            found = _LOCAL
            for possible in self.caps.sg.possible_types(type_name, subgraph):
                part = self._object_paths(possible, selections, subgraph, provided, depth)
                if part is None:
                    found = None
                    break
                found = _Paths(found.fetches | part.fetches, max(found.steps, part.steps))
        # The selections and field set are kept alive with the entry: their ids are its key.
        self._memo[key] = (found, (selections, provided))
        return found

    def _object_paths(
        self,
        type_name: str,
        selections: tuple[Selection, ...],
        subgraph: str,
        provided: FieldSet | None,
        depth: int,
    ) -> _Paths | None:
        """Fields the subgraph answers are followed in place; a field it answers only under
        conditions (`@requires`, `@fromContext`) costs the fetches of its conditions and one
        entity fetch back into the subgraph after them; the other fields are given to the
        fewest subgraphs reachable by a key or interface-object jump, each one fetch at this
        object's path (plus, when the key or the target's `@requires` must be fetched first,
        those fetches and steps)."""
        caps = self.caps
        caps.budget.spend()
        info = caps.types[type_name]
        fetches: set[tuple[tuple[str, ...], str]] = set()
        steps = 0
        missing: list[Field] = []
        for selection in _fields_on(caps, type_name, selections):
            field = info.fields.get(selection.name)
            if field is None:
                continue
            sub_provided = provided_at(provided, type_name, selection.name)
            inner: _Paths | None = None
            if sub_provided is not None or caps.can_resolve(type_name, selection.name, subgraph):
                inner = self._paths(
                    field.type_name, selection.selections, subgraph, sub_provided, depth + 1
                )
            elif self._has_conditions(type_name, selection.name, subgraph):
                inner = self._conditional(type_name, selection, subgraph, provided, depth)
            if inner is None:
                missing.append(selection)
                continue
            fetches |= _under(selection.response_key, inner.fetches)
            steps = max(steps, inner.steps)
        if missing:
            found = self._cover(type_name, missing, subgraph, provided, depth)
            if found is None:
                return None
            fetches |= found.fetches
            steps = max(steps, found.steps)
        return _Paths(frozenset(fetches), steps)

    def _cover(
        self,
        type_name: str,
        missing: list[Field],
        subgraph: str,
        provided: FieldSet | None,
        depth: int,
    ) -> _Paths | None:
        """The fields `subgraph` does not answer, given to jump targets: repeatedly the target
        answering most of those left, then the one whose part costs fewest further fetches
        and steps, the subgraph order on a tie; each target one fetch at this path, one step
        after what its key and `@requires` need first. None when some field has no target."""
        caps = self.caps
        # Per target, the missing fields it answers and what each costs from there; each
        # field looks up only the subgraphs that resolve it.
        targets = self.jump_targets(type_name, subgraph, provided)
        by_type: dict[str, dict[str, JumpTarget]] = {}
        for target in targets:
            by_type.setdefault(target.type_name, {})[target.subgraph] = target
        found_parts: dict[str, dict[int, _Paths]] = {}
        for index, selection in enumerate(missing):
            for owner_type, reachable in by_type.items():
                field = caps.types[owner_type].fields.get(selection.name)
                if field is None:
                    continue
                for answering in field.resolvable_in:
                    jump = reachable.get(answering)
                    if jump is None:
                        continue
                    caps.budget.spend()
                    part = self._part(jump, field, selection, subgraph, provided, depth)
                    if part is not None:
                        found_parts.setdefault(jump.subgraph, {})[index] = part
        answers = [(t, found_parts[t.subgraph]) for t in targets if t.subgraph in found_parts]
        left = set(range(len(missing)))
        fetches: set[tuple[tuple[str, ...], str]] = set()
        steps = 0
        while left:
            best: tuple[tuple[int, int, int], str, set[int], _Paths] | None = None
            for target, parts in answers:
                covered = left & parts.keys()
                if not covered:
                    continue
                below_fetches: set[tuple[tuple[str, ...], str]] = set()
                below_steps = 0
                for index in covered:
                    below_fetches |= parts[index].fetches
                    below_steps = max(below_steps, parts[index].steps)
                rank = (len(covered), -len(below_fetches), -below_steps)
                if best is None or rank > best[0]:
                    below = _Paths(frozenset(below_fetches), below_steps)
                    best = (rank, target.subgraph, covered, below)
            if best is None:
                return None
            _, chosen, covered, below = best
            fetches.add(((), chosen))
            fetches |= below.fetches
            steps = max(steps, 1 + below.steps)
            left -= covered
        return _Paths(frozenset(fetches), steps)

    def _part(
        self,
        target: JumpTarget,
        field: FieldInfo,
        selection: Field,
        subgraph: str,
        provided: FieldSet | None,
        depth: int,
    ) -> _Paths | None:
        """What a field costs fetched from `target` after a jump from `subgraph`: its own
        selection from there, and its `@requires` fetched before the jump."""
        inner = _LOCAL
        if selection.selections:
            found = self._paths(
                field.type_name, selection.selections, target.subgraph, None, depth + 1
            )
            if found is None:
                return None
            inner = _Paths(frozenset(_under(selection.response_key, found.fetches)), found.steps)
        first = self._requires_first(target, selection.name, subgraph, provided, depth)
        if first is None:
            return None
        if first is not _LOCAL:
            inner = _Paths(inner.fetches | first.fetches, inner.steps + first.steps)
        if not target.extra:
            return inner
        return _Paths(inner.fetches, inner.steps + target.extra)

    def _interface_owner(self, interface: str, subgraph: str) -> str | None:
        """The first subgraph with the real interface that an `@interfaceObject` value in
        `subgraph` can be fetched from by a key it has."""
        info = self.caps.types[interface]
        for edge in self.caps.graph.jumps(Node(interface, subgraph)):
            if (
                edge.kind == "key"
                and edge.tail is not None
                and edge.tail.subgraph not in info.interface_object_in
                and self.caps.field_set_local(interface, edge.conditions, subgraph, None)
            ):
                return edge.tail.subgraph
        return None

    def _has_conditions(self, type_name: str, field_name: str, subgraph: str) -> bool:
        edge = self.caps.graph.field_edge(Node(type_name, subgraph), field_name)
        return edge is not None and bool(edge.conditions or edge.context)

    def _conditional(
        self,
        type_name: str,
        selection: Field,
        subgraph: str,
        provided: FieldSet | None,
        depth: int,
    ) -> _Paths | None:
        """A field `subgraph` answers once its conditions are fetched: the fetches of its
        `@requires` (from here), then one entity fetch back into `subgraph` at this path, one
        step after them. A `@fromContext` value is read on an ancestor the plan has fetched
        already, so it adds that entity fetch and step only."""
        edge = self.caps.graph.field_edge(Node(type_name, subgraph), selection.name)
        if edge is None:
            return None
        first = _LOCAL
        if edge.conditions:
            found = self._paths(
                type_name, self.condition_selections(edge), subgraph, provided, depth + 1
            )
            if found is None:
                return None
            first = found
        field = self.caps.types[type_name].fields[selection.name]
        inner = self._paths(field.type_name, selection.selections, subgraph, None, depth + 1)
        if inner is None:
            return None
        return _Paths(
            first.fetches | {((), subgraph)} | _under(selection.response_key, inner.fetches),
            first.steps + 1 + inner.steps,
        )

    def _requires_first(
        self,
        target: JumpTarget,
        field_name: str,
        subgraph: str,
        provided: FieldSet | None,
        depth: int,
    ) -> _Paths | None:
        """What the target's `@requires` of a field costs, fetched where the object is now
        (before the jump); None when they cannot be fetched from there."""
        edge = self._required(target.type_name, target.subgraph, field_name)
        if edge is None:
            return _LOCAL
        return self._paths(
            target.source_type, self.condition_selections(edge), subgraph, provided, depth + 1
        )

    def _required(self, type_name: str, subgraph: str, field_name: str) -> Edge | None:
        """The field's edge on the type's node in `subgraph` when it has `@requires`."""
        key = (type_name, subgraph, field_name)
        if key in self._requirements:
            return self._requirements[key]
        edge = self.caps.graph.field_edge(Node(type_name, subgraph), field_name)
        found = self._requirements[key] = edge if edge is not None and edge.conditions else None
        return found

    def condition_selections(self, edge: Edge) -> tuple[Selection, ...]:
        """An edge's `@requires` as selections, made once per edge (the memo keys on their
        identity)."""
        found = self._conditions.get(edge)
        if found is None:
            field_set = self.caps.concrete_field_set(edge.head.type_name, edge.conditions)
            found = self._conditions[edge] = field_set_selections(field_set)
        return found

    def jump_targets(
        self, type_name: str, subgraph: str, provided: FieldSet | None
    ) -> list[JumpTarget]:
        """The subgraphs an object here can be fetched from by a key or interface-object
        edge, with 1 when the key must be fetched first (one more step), in the supergraph's
        subgraph order (key edges before interface-object edges to the same subgraph)."""
        key = (type_name, subgraph, id(provided))
        found = self._targets.get(key)
        if found is not None:
            return found[0]
        local: dict[str, JumpTarget] = {}
        first: list[Edge] = []
        for edge in self.caps.graph.jumps(Node(type_name, subgraph)):
            tail = edge.tail
            if tail is None or tail.subgraph == subgraph or tail.subgraph in local:
                continue
            if self.caps.field_set_local(type_name, edge.conditions, subgraph, provided):
                local[tail.subgraph] = JumpTarget(tail.subgraph, tail.type_name, type_name, 0)
            else:
                first.append(edge)
        # A key to fetch first is searched like a selection, with the jumps whose key is here
        # (one fetch before the jump, never a chain of them): those stand in meanwhile.
        self._targets[key] = (list(local.values()), provided)
        targets = dict(local)
        for edge in first:
            tail = edge.tail
            assert tail is not None
            if tail.subgraph in targets or edge.kind != "key":
                continue
            keys = self.condition_selections(edge)
            if self._paths(type_name, keys, subgraph, provided, 0) is not None:
                targets[tail.subgraph] = JumpTarget(tail.subgraph, tail.type_name, type_name, 1)
        ordered = sorted(targets.values(), key=lambda t: self.caps.order[t.subgraph])
        found = (ordered, provided)
        self._targets[key] = found
        return found[0]


class JumpTarget(NamedTuple):
    """A subgraph a jump leads to: the type it knows the object as (the interface, for an
    interface-object edge), the object's type where the jump starts, and 1 when the key must
    be fetched first."""

    subgraph: str
    type_name: str
    source_type: str
    extra: int


def _under(
    key: str, fetches: frozenset[tuple[tuple[str, ...], str]]
) -> set[tuple[tuple[str, ...], str]]:
    return {((key, *path), subgraph) for path, subgraph in fetches}


def _fields_on(
    caps: Capabilities, type_name: str, selections: tuple[Selection, ...]
) -> Iterator[Field]:
    """The fields selected on an object of `type_name`, through the fragments that apply."""
    for selection in selections:
        if isinstance(selection, Fragment):
            condition = selection.type_condition
            if (
                condition is None
                or condition == type_name
                or type_name in caps.sg.possible_types(condition)
            ):
                yield from _fields_on(caps, type_name, selection.selections)
        elif selection.name not in _INTROSPECTION:
            yield selection


def needs_object_type(interface: str, selections: tuple[Selection, ...]) -> bool:
    """Whether the selections on an interface value ask for its object type."""
    for selection in selections:
        if isinstance(selection, Fragment):
            if selection.type_condition not in (None, interface) or needs_object_type(
                interface, selection.selections
            ):
                return True
        elif selection.name == "__typename":
            return True
    return False
