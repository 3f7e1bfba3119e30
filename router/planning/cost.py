"""The planner's cost model: how many entity fetches, then how many sequential steps, resolving
a selection from a subgraph takes, found by a search over the query graph's paths. Where a
field could be resolved in more than one way, the planner takes the cheapest."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

from router.planning.capabilities import provided_at
from router.planning.operation import Field, Fragment, Selection
from router.planning.query_graph import Node
from router.supergraph import FieldSet

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
        self._targets: dict[tuple[str, str, int], tuple[list[tuple[str, int]], object]] = {}

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
        """Fields the subgraph answers are followed in place; the others are given to the
        fewest subgraphs reachable by a jump, each one fetch at this object's path."""
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
            if inner is None:
                missing.append(selection)
                continue
            fetches |= _under(selection.response_key, inner.fetches)
            steps = max(steps, inner.steps)
        targets = self._jump_targets(type_name, subgraph, provided) if missing else []
        while missing:
            best: tuple[int, str, list[Field], _Paths] | None = None
            for target, extra in targets:
                caps.budget.spend()
                covered: list[Field] = []
                below = _LOCAL
                for selection in missing:
                    field = info.fields[selection.name]
                    if target not in field.resolvable_in:
                        continue
                    inner = (
                        self._paths(field.type_name, selection.selections, target, None, depth + 1)
                        if selection.selections
                        else _LOCAL
                    )
                    if inner is None:
                        continue
                    covered.append(selection)
                    below = _Paths(
                        below.fetches | _under(selection.response_key, inner.fetches),
                        max(below.steps, inner.steps + extra),
                    )
                if covered and (best is None or len(covered) > best[0]):
                    best = (len(covered), target, covered, below)
            if best is None:
                return None
            _, target, covered, below = best
            fetches.add(((), target))
            fetches |= below.fetches
            steps = max(steps, 1 + below.steps)
            missing = [s for s in missing if s not in covered]
        return _Paths(frozenset(fetches), steps)

    def _jump_targets(
        self, type_name: str, subgraph: str, provided: FieldSet | None
    ) -> list[tuple[str, int]]:
        """The subgraphs an object here can be fetched from by key, with 1 when the key must
        be fetched first (one more step), in the supergraph's subgraph order."""
        key = (type_name, subgraph, id(provided))
        found = self._targets.get(key)
        if found is not None:
            return found[0]
        targets: dict[str, int] = {}
        for edge in self.caps.graph.jumps(Node(type_name, subgraph)):
            target = edge.tail.subgraph if edge.tail is not None else subgraph
            if edge.kind != "key" or target == subgraph or targets.get(target) == 0:
                continue
            if self.caps.field_set_local(type_name, edge.conditions, subgraph, provided):
                targets[target] = 0
            elif target not in targets and self.caps.key_resolvable(edge, provided, 2):
                targets[target] = 1
        found = (list(targets.items()), provided)
        self._targets[key] = found
        return found[0]


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
