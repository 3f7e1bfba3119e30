"""The query planner: (supergraph, normalized operation) -> QueryPlan, pure and deterministic.

Fields are placed in the fetch group of the subgraph already being queried whenever it can
resolve them; otherwise an entity fetch (`_entities`) is added at the field's parent path,
keyed by a key that the current subgraph can provide. Requirements (`@requires`, keys not
available locally) are planned like client fields and become dependencies of the fetch.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from typing import NamedTuple

from router.planning.capabilities import Capabilities, provided_at, selection_size
from router.planning.contexts import ContextUses, plan_contexts, rename_variable
from router.planning.cost import Cost, CostModel
from router.planning.errors import PlanningError
from router.planning.groups import FetchGroup, field_set_selections, unique_conditions
from router.planning.interface_objects import jump_to_interface_object, resolve_concrete_type
from router.planning.nodes import QueryPlan
from router.planning.operation import (
    ConditionTerm,
    Field,
    Fragment,
    NormalizedOperation,
    Selection,
)
from router.planning.options import PlanningBudget, PlanningOptions
from router.planning.query_graph import Node, QueryGraph, build_query_graph
from router.planning.selections import OutSelections
from router.planning.tree import build_plan
from router.supergraph import EntityKey, FieldInfo, FieldSet, FieldSource, Supergraph
from router.supergraph.model import list_depth, named_type

_INTROSPECTION = {"__schema", "__type", "__typename"}


class _Planner(Capabilities):
    """The planning of one operation: fetch groups grow as fields are placed."""

    def __init__(
        self,
        supergraph: Supergraph,
        graph: QueryGraph,
        operation: NormalizedOperation,
        budget: PlanningBudget,
    ) -> None:
        super().__init__(supergraph, graph, budget)
        self.costs = CostModel(self)
        self.operation = operation
        self.groups: list[FetchGroup] = []
        self.touched: list[set[int]] = []
        # The objects being planned, outermost first: where `@fromContext` values come from.
        self.ancestry: list[tuple[str, tuple[str, ...], FetchGroup, OutSelections]] = []
        self.run = 0
        # Per object being planned, its selections (to weigh a jump against its siblings).
        self.siblings: list[tuple[Selection, ...]] = []
        # Per value being planned, the subgraphs that could resolve its path.
        self.candidates: list[frozenset[str]] = []

    # -- groups ------------------------------------------------------------------------------
    def new_group(
        self,
        subgraph: str,
        path: tuple[str, ...],
        conditions: tuple[ConditionTerm, ...],
        entity: bool,
    ) -> FetchGroup:
        group = FetchGroup(len(self.groups), subgraph, path, conditions, entity, self.run)
        self.groups.append(group)
        return group

    def ancestors(self, group_id: int) -> set[int]:
        seen: set[int] = set()
        stack = [group_id]
        while stack:
            for parent in self.groups[stack.pop()].depends_on:
                if parent not in seen:
                    seen.add(parent)
                    stack.append(parent)
        return seen

    def find_dependent(
        self,
        subgraph: str,
        path: tuple[str, ...],
        conditions: tuple[ConditionTerm, ...],
        deps: set[int],
        requirement: tuple[str, FieldSet] | None = None,
    ) -> FetchGroup | None:
        for group in self.groups:
            if (
                group.is_entity
                and (requirement is None or group.accepts(*requirement))
                and group.subgraph == subgraph
                and group.path == path
                and group.conditions == conditions
                and group.run == self.run
                and not any(group.id == d or group.id in self.ancestors(d) for d in deps)
            ):
                return group
        return None

    def dependent(
        self,
        subgraph: str,
        path: tuple[str, ...],
        conditions: tuple[ConditionTerm, ...],
        deps: set[int],
        requirement: tuple[str, FieldSet] | None = None,
    ) -> FetchGroup:
        group = self.find_dependent(subgraph, path, conditions, deps, requirement)
        if group is None:
            group = self.new_group(subgraph, path, conditions, entity=True)
        group.depends_on |= deps
        return group

    def touch(self, group: FetchGroup) -> None:
        if self.touched:
            self.touched[-1].add(group.id)

    # -- what a subgraph can resolve -----------------------------------------------------------
    def plan_value(
        self,
        group: FetchGroup,
        out: OutSelections,
        type_name: str,
        selections: tuple[Selection, ...],
        path: tuple[str, ...],
        provided: FieldSet | None,
        conditions: tuple[ConditionTerm, ...],
    ) -> None:
        kind = self.types[type_name].kind
        if kind == "object":
            self.plan_object(group, out, type_name, selections, path, provided, conditions)
        elif kind == "interface" and self.interface_level(group.subgraph, type_name, selections):
            # Only the interface's own fields: planned on the interface, its objects' types
            # never asked (an `@interfaceObject` subgraph does not know them).
            out.field("__typename", "__typename")
            self.plan_object(group, out, type_name, selections, path, provided, conditions)
        elif kind == "interface" and resolve_concrete_type(
            self, group, out, type_name, selections, path, conditions
        ):
            return
        elif kind in {"interface", "union"}:
            # Abstract values are planned per possible runtime type, so every jump is for a
            # concrete entity type, and the response shaper learns each object's type.
            out.field("__typename", "__typename")
            for possible in self.possible_here(type_name, group.subgraph):
                fragment = out.fragment(possible)
                self.plan_object(
                    group, fragment.selections, possible, selections, path, provided, conditions
                )

    def interface_level(
        self, subgraph: str, interface: str, selections: tuple[Selection, ...]
    ) -> bool:
        info = self.types[interface]
        return (
            subgraph in info.interface_object_in or not self.sg.possible_types(interface, subgraph)
        ) and not _needs_object_type(interface, selections)

    def possible_here(self, type_name: str, subgraph: str) -> tuple[str, ...]:
        """The members of a union a value on this path can have: where several subgraphs
        could still resolve the path, only the members all of them know are safe to ask for."""
        possible = self.sg.possible_types(type_name, subgraph)
        info = self.types[type_name]
        if info.kind != "union" or not self.candidates:
            return possible
        for other in self.candidates[-1] & info.subgraphs:
            known = info.members_in.get(other, frozenset())
            possible = tuple(p for p in possible if p in known)
        return possible

    def plan_object(
        self,
        group: FetchGroup,
        out: OutSelections,
        type_name: str,
        selections: tuple[Selection, ...],
        path: tuple[str, ...],
        provided: FieldSet | None,
        conditions: tuple[ConditionTerm, ...],
    ) -> None:
        self.ancestry.append((type_name, path, group, out))
        self.siblings.append(selections)
        try:
            self._plan_selections(group, out, type_name, selections, path, provided, conditions)
        finally:
            self.ancestry.pop()
            self.siblings.pop()

    def _plan_selections(
        self,
        group: FetchGroup,
        out: OutSelections,
        type_name: str,
        selections: tuple[Selection, ...],
        path: tuple[str, ...],
        provided: FieldSet | None,
        conditions: tuple[ConditionTerm, ...],
    ) -> None:
        for selection in selections:
            if isinstance(selection, Fragment):
                condition = selection.type_condition
                if (
                    condition
                    and condition != type_name
                    and type_name not in self.sg.possible_types(condition)
                ):
                    continue
                target = out
                if selection.directives:
                    target = out.fragment(
                        type_name, selection.directives, selection.variables
                    ).selections
                self.plan_object(
                    group,
                    target,
                    type_name,
                    selection.selections,
                    path,
                    provided,
                    unique_conditions(conditions + selection.conditions),
                )
            elif selection.name not in _INTROSPECTION:
                self.plan_field(group, out, type_name, selection, path, provided, conditions)

    def plan_field(
        self,
        group: FetchGroup,
        out: OutSelections,
        type_name: str,
        selection: Field,
        path: tuple[str, ...],
        provided: FieldSet | None,
        conditions: tuple[ConditionTerm, ...],
    ) -> None:
        self.budget.spend()
        info = self.types[type_name].fields.get(selection.name)
        if info is None:
            raise PlanningError(f"Unknown field {type_name}.{selection.name}")
        conditions = unique_conditions(conditions + selection.conditions)
        sub_provided = provided_at(provided, type_name, selection.name)
        if sub_provided is None and not self.can_resolve(type_name, selection.name, group.subgraph):
            self.jump(group, out, type_name, selection, path, provided, conditions)
            return
        if sub_provided is None:
            source = info.source(group.subgraph)
            sub_provided = source.provides if source and source.provides else None
        # Part of the value may live in another subgraph that cannot be reached by key (a value
        # type): then fetch the whole field from a subgraph that has all of it.
        if selection.selections and not self.reachable(
            info.type_name, selection.selections, group.subgraph, sub_provided
        ):
            if self.jump(
                group, out, type_name, selection, path, provided, conditions, optional=True
            ):
                return
            # No subgraph has all of it: what this one cannot reach goes through the parent's
            # key to subgraphs that have it (a parent entity call), the rest stays here.
            part, rest = self.split(
                info.type_name_in(group.subgraph),
                selection.selections,
                group.subgraph,
                sub_provided,
            )
            if part and self.jump(
                group,
                out,
                type_name,
                replace(selection, selections=rest),
                path,
                provided,
                conditions,
                optional=True,
            ):
                selection = replace(selection, selections=part)
        elif selection.selections and len(info.resolvable_in) > 1:
            # Resolvable here, but its selection may take fewer fetches from another subgraph
            # that has the field too: the cheaper path wins, a tie stays here.
            here = self.costs.cost(
                info.type_name_in(group.subgraph),
                selection.selections,
                group.subgraph,
                sub_provided,
            )
            if (
                here is not None
                and here.fetches
                and self.jump(
                    group, out, type_name, selection, path, provided, conditions, True, here
                )
            ):
                return
        self.place(group, out, selection, info, path, sub_provided, conditions)

    def place(
        self,
        group: FetchGroup,
        out: OutSelections,
        selection: Field,
        info: FieldInfo,
        path: tuple[str, ...],
        provided: FieldSet | None,
        conditions: tuple[ConditionTerm, ...],
    ) -> None:
        placed = out.field(
            selection.response_key,
            selection.name,
            selection.arguments,
            selection.directives,
            selection.variables,
        )
        self.touch(group)
        if not selection.selections:
            return
        # The subgraph's own type of the field: it may be narrower than the supergraph's.
        type_ref = info.type_ref_in(group.subgraph)
        type_name = named_type(type_ref)
        child_path = (*path, selection.response_key, *("@",) * list_depth(type_ref))
        if self.types[info.type_name].kind != "object":
            placed.selections.field("__typename", "__typename")
        # The subgraphs that could still resolve this path: the parent's, or any where the
        # parent is an entity.
        parent = self.types[self.ancestry[-1][0]] if self.ancestry else None
        self.candidates.append(
            frozenset(
                subgraph
                for subgraph in info.resolvable_in
                if not self.candidates
                or subgraph in self.candidates[-1]
                or (parent is not None and parent.is_entity_in(subgraph))
            )
            | {group.subgraph}
        )
        try:
            self.plan_value(
                group,
                placed.selections,
                type_name,
                selection.selections,
                child_path,
                provided,
                conditions,
            )
        finally:
            self.candidates.pop()
        if not placed.selections:
            # Nothing but `__typename` (answered by the shaper) was selected.
            placed.selections.field("__typename", "__typename")

    def jump(
        self,
        group: FetchGroup,
        out: OutSelections,
        type_name: str,
        selection: Field,
        path: tuple[str, ...],
        provided: FieldSet | None,
        conditions: tuple[ConditionTerm, ...],
        optional: bool = False,
        within: Cost | None = None,
    ) -> bool:
        """Fetch `selection` by an entity fetch; with `optional`, False when impossible; with
        `within`, only by a jump cheaper than that (else False). The cheapest of
        `jump_options` is taken; with none, the field is fetched in parts from several
        subgraphs, or through an `@interfaceObject`."""
        options = self.jump_options(group, type_name, selection, path, provided, conditions)
        best = min(options, key=lambda option: option[0]) if options else None
        if within is not None and (best is None or best[0][:2] >= within):
            return False
        if best is None and self.jump_in_parts(
            group, out, type_name, selection, path, provided, conditions, optional
        ):
            return True
        if best is None:
            if jump_to_interface_object(self, group, out, type_name, selection, path, conditions):
                return True
            if optional:
                return False
            raise PlanningError(
                f"{type_name}.{selection.name} cannot be reached from subgraph "
                f"'{group.subgraph}': no subgraph resolving it has a usable @key on {type_name}"
            )
        _, target, key, key_local = best
        info = self.types[type_name].fields[selection.name]
        deps = {group.id}
        out.field("__typename", "__typename")
        if key_local:
            out.add_field_set(key.fields)
        else:
            deps |= self.plan_requirement(
                group, out, type_name, key.fields, path, provided, conditions
            )
        source = info.source(target)
        requires, required_by = self.plan_requires(
            group, out, type_name, source, path, provided, conditions
        )
        deps |= required_by
        requirement = key.fields + requires
        uses: ContextUses = []
        if source is not None and source.context_arguments:
            selection, context_deps, uses = plan_contexts(
                self, source.context_arguments, selection, path, conditions
            )
            deps |= context_deps
        dependent = self.dependent(target, path, conditions, deps, (type_name, requirement))
        dependent.add_requirement(type_name, requirement, key.fields)
        for use in uses:
            variable = f"contextualArgument_{len(dependent.context_uses)}"
            selection = rename_variable(selection, use[0], variable)
            dependent.context_uses.append((variable, *use[1:]))
        fragment = dependent.selections.fragment(type_name)
        sub_provided = source.provides if source is not None and source.provides else None
        self.place(dependent, fragment.selections, selection, info, path, sub_provided, conditions)
        return True

    def jump_options(
        self,
        group: FetchGroup,
        type_name: str,
        selection: Field,
        path: tuple[str, ...],
        provided: FieldSet | None,
        conditions: tuple[ConditionTerm, ...],
    ) -> list[tuple[JumpCost, str, EntityKey, bool]]:
        """The ways to fetch `selection` by an entity fetch, with their costs: paths of the
        query graph from the object's node in the current subgraph, a key edge then the target
        subgraph's edge for the field (a key edge back to the current subgraph when the field
        has conditions to fetch first)."""
        info = self.types[type_name].fields[selection.name]
        options: list[tuple[JumpCost, str, EntityKey, bool]] = []
        below: dict[str, Cost | None] = {}
        for edge in self.graph.jumps(Node(type_name, group.subgraph)):
            if edge.kind != "key" or edge.tail is None:
                continue
            subgraph = edge.tail.subgraph
            field_edge = self.graph.field_edge(edge.tail, selection.name)
            if (
                field_edge is None
                or subgraph not in info.resolvable_in
                or (
                    subgraph == group.subgraph and not (field_edge.conditions or field_edge.context)
                )
            ):
                continue
            if subgraph not in below:
                below[subgraph] = None
                if self.reachable(info.type_name, selection.selections, subgraph, None):
                    found = self.costs.cost(info.type_name, selection.selections, subgraph, None)
                    # None: reached through an interface object, which the model does not
                    # search; counted as resolved there.
                    below[subgraph] = found if found is not None else Cost(0, 0)
            then = below[subgraph]
            if then is None:
                continue
            self.budget.spend()
            key = EntityKey(subgraph, edge.conditions)
            key_local = self.field_set_local(type_name, key.fields, group.subgraph, provided)
            existing = self.find_dependent(subgraph, path, conditions, {group.id})
            cost = JumpCost(
                fetches=(0 if existing else 1) + (0 if key_local else 1) + then.fetches,
                steps=(1 if key_local else 2) + then.steps,
                left_behind=-self.sibling_coverage(type_name, group.subgraph, subgraph),
                uncovered=-self.coverage(info.type_name, selection.selections, subgraph),
                order=self.order[subgraph],
            )
            options.append((cost, subgraph, key, key_local))
        return options

    def sibling_coverage(self, type_name: str, here: str, target: str) -> int:
        """How many fields selected on the object being planned `target` resolves and the
        subgraph `here` does not."""
        if not self.siblings or self.ancestry[-1][0] != type_name:
            return 0
        count = 0
        for selection in _flat_fields(self.siblings[-1]):
            self.budget.spend()
            if not self.can_resolve(type_name, selection.name, here) and self.can_resolve(
                type_name, selection.name, target
            ):
                count += 1
        return count

    def plan_requires(
        self,
        group: FetchGroup,
        out: OutSelections,
        type_name: str,
        source: FieldSource | None,
        path: tuple[str, ...],
        provided: FieldSet | None,
        conditions: tuple[ConditionTerm, ...],
    ) -> tuple[FieldSet, set[int]]:
        """A field's `@requires` planned where the object is: the representation's extra
        fields, and the fetches they come from."""
        if source is None or not source.requires:
            return (), set()
        requires = self.concrete_field_set(type_name, source.requires)
        deps = self.plan_requirement(group, out, type_name, requires, path, provided, conditions)
        return requires, deps

    def jump_in_parts(
        self,
        group: FetchGroup,
        out: OutSelections,
        type_name: str,
        selection: Field,
        path: tuple[str, ...],
        provided: FieldSet | None,
        conditions: tuple[ConditionTerm, ...],
        optional: bool,
    ) -> bool:
        """Fetch a field no one subgraph has all of from several: each subgraph its part."""
        if not selection.selections:
            return False
        info = self.types[type_name].fields[selection.name]
        best: tuple[int, tuple[Selection, ...], tuple[Selection, ...]] | None = None
        for subgraph in sorted(info.resolvable_in, key=self.order.__getitem__):
            if subgraph == group.subgraph or not self.key_reachable(
                type_name, group.subgraph, subgraph, provided
            ):
                continue
            part, rest = self.split(
                info.type_name_in(subgraph), selection.selections, subgraph, None
            )
            size = selection_size(part)
            if part and rest and (best is None or size > best[0]):
                best = (size, part, rest)
        if best is None:
            return False
        _, part, rest = best
        self.jump(
            group, out, type_name, replace(selection, selections=part), path, provided, conditions
        )
        return self.jump(
            group,
            out,
            type_name,
            replace(selection, selections=rest),
            path,
            provided,
            conditions,
            optional,
        )

    def plan_requirement(
        self,
        group: FetchGroup,
        out: OutSelections,
        type_name: str,
        field_set: FieldSet,
        path: tuple[str, ...],
        provided: FieldSet | None,
        conditions: tuple[ConditionTerm, ...],
    ) -> set[int]:
        """Plan fields an entity fetch needs in its representation; returns the groups used."""
        if len(self.touched) > 8:
            raise PlanningError(
                f"Requirements on {type_name} cannot be met: each needs another "
                "(a cycle, or a key no subgraph on the path can provide)"
            )
        self.touched.append(set())
        try:
            self.plan_object(
                group, out, type_name, field_set_selections(field_set), path, provided, conditions
            )
        finally:
            used = self.touched.pop()
        if self.touched:
            self.touched[-1] |= used
        return used

    # -- roots ---------------------------------------------------------------------------------
    def plan_roots(self) -> list[list[FetchGroup]]:
        root_type = self.sg.root_type(self.operation.kind)
        if root_type is None or root_type not in self.types:
            raise PlanningError(f"The supergraph has no {self.operation.kind} type")
        occurrences = list(_root_fields(self.operation.selections))
        runs: list[tuple[str, dict[int, Field]]] = []
        chosen: list[str] = []
        for root_field in occurrences:
            if root_field.name in _INTROSPECTION:
                continue
            for subgraph, part in self.root_parts(root_type, root_field, chosen):
                if self.operation.kind == "mutation":
                    if not runs or runs[-1][0] != subgraph:
                        runs.append((subgraph, {}))
                    run = runs[-1]
                else:
                    found = next((r for r in runs if r[0] == subgraph), None)
                    if found is None:
                        found = (subgraph, {})
                        runs.append(found)
                    run = found
                run[1][id(root_field)] = part
                chosen.append(subgraph)
        planned: list[list[FetchGroup]] = []
        for index, (subgraph, wanted) in enumerate(runs):
            if self.operation.kind == "mutation":
                self.run = index
            start = len(self.groups)
            group = self.new_group(subgraph, (), (), entity=False)
            selections = _only(self.operation.selections, wanted)
            self.plan_object(group, group.selections, root_type, selections, (), None, ())
            planned.append(self.groups[start:])
        if self.operation.kind != "mutation":
            return [self.groups] if self.groups else []
        return planned

    def root_parts(
        self, root_type: str, root_field: Field, chosen: list[str]
    ) -> list[tuple[str, Field]]:
        """Where a root field is fetched: one subgraph, or, for a field several subgraphs
        serve without a key between them, each of those with the part it can resolve."""
        subgraph = self.root_subgraph(root_type, root_field, chosen)
        info = self.types[root_type].fields[root_field.name]
        if self.operation.kind != "query" or not root_field.selections:
            return [(subgraph, root_field)]
        parts: list[tuple[str, Field]] = []
        rest = root_field.selections
        candidates = set(self.root_entries(root_type, root_field))
        while rest:
            best: tuple[int, str, tuple[Selection, ...], tuple[Selection, ...]] | None = None
            for candidate in sorted(candidates, key=self.order.__getitem__):
                part, left = self.split(info.type_name_in(candidate), rest, candidate, None)
                size = selection_size(part) + (candidate == subgraph)
                if part and (best is None or size > best[0]):
                    best = (size, candidate, part, left)
            if best is None:
                break
            _, candidate, part, rest = best
            candidates.discard(candidate)
            parts.append((candidate, replace(root_field, selections=part)))
        if rest or not parts:
            # Nothing reaches the rest: planned in the best subgraph, which names what fails.
            return [(subgraph, root_field)]
        return parts

    def root_entries(self, root_type: str, root_field: Field) -> list[str]:
        """The subgraphs whose root entry point of this operation has an edge for the field."""
        entries = [
            node.subgraph
            for node in self.graph.roots.get(self.operation.kind, ())
            if node.type_name == root_type and self.graph.field_edge(node, root_field.name)
        ]
        if not entries:
            raise PlanningError(f"No subgraph resolves {root_type}.{root_field.name}")
        return entries

    def root_subgraph(self, root_type: str, root_field: Field, chosen: list[str]) -> str:
        """Where a root field starts: the entry point whose plan costs the fewest fetches (one
        more unless that subgraph is already queried), then the fewest sequential steps; a tie
        goes to the one resolving most of the selection itself, then the subgraph order."""
        entries = self.root_entries(root_type, root_field)
        if len(entries) == 1:
            return entries[0]
        info = self.types[root_type].fields[root_field.name]

        def cost(subgraph: str) -> tuple[int, int, int, int]:
            type_name = info.type_name_in(subgraph)
            found = self.costs.cost(type_name, root_field.selections, subgraph, None)
            fetches, steps = found if found is not None else _UNREACHABLE
            return (
                fetches + (subgraph not in chosen),
                steps,
                -self.coverage(info.type_name, root_field.selections, subgraph),
                self.order[subgraph],
            )

        return min(entries, key=cost)


# What a selection some field of which no path reaches costs: more than any other.
_UNREACHABLE = Cost(1 << 20, 1 << 20)


class JumpCost(NamedTuple):
    """What an entity fetch costs the plan, compared in this order: new fetches (none when a
    fetch planned at this path already goes there, one more when the key must be fetched
    first), sequential steps, then the fetches it saves later: fields beside this one the
    current subgraph lacks and the target has (`left_behind`, negated), fields of its own
    selection the target resolves itself (`uncovered`, negated); the supergraph's subgraph
    order decides a tie."""

    fetches: int
    steps: int
    left_behind: int
    uncovered: int
    order: int


def _flat_fields(selections: tuple[Selection, ...]) -> Iterator[Field]:
    for selection in selections:
        if isinstance(selection, Fragment):
            yield from _flat_fields(selection.selections)
        elif selection.name not in _INTROSPECTION:
            yield selection


def _needs_object_type(interface: str, selections: tuple[Selection, ...]) -> bool:
    """Whether the selections on an interface value ask for its object type."""
    for selection in selections:
        if isinstance(selection, Fragment):
            if selection.type_condition not in (None, interface) or _needs_object_type(
                interface, selection.selections
            ):
                return True
        elif selection.name == "__typename":
            return True
    return False


def _root_fields(selections: tuple[Selection, ...]) -> list[Field]:
    found: list[Field] = []
    for selection in selections:
        if isinstance(selection, Fragment):
            found.extend(_root_fields(selection.selections))
        else:
            found.append(selection)
    return found


def _only(selections: tuple[Selection, ...], wanted: dict[int, Field]) -> tuple[Selection, ...]:
    kept: list[Selection] = []
    for selection in selections:
        if isinstance(selection, Fragment):
            inner = _only(selection.selections, wanted)
            if inner:
                kept.append(
                    Fragment(
                        selection.type_condition,
                        selection.directives,
                        selection.conditions,
                        selection.variables,
                        inner,
                    )
                )
        elif id(selection) in wanted:
            kept.append(wanted[id(selection)])
    return tuple(kept)


def plan_operation(
    supergraph: Supergraph,
    operation: NormalizedOperation,
    options: PlanningOptions | None = None,
) -> QueryPlan:
    """The query plan of a normalized operation; raises `PlanningError`, also when planning
    exceeds the options' limits."""
    if operation.kind == "subscription":
        raise PlanningError("Subscriptions are not supported by this router yet")
    return _plan(supergraph, operation, options or PlanningOptions())


def plan_subscription(
    supergraph: Supergraph,
    operation: NormalizedOperation,
    options: PlanningOptions | None = None,
) -> QueryPlan:
    """The plan of a subscription as if it ran once: its first fetch is the subscription to the
    owning subgraph, the rest runs again for every event (see `router.subscriptions`)."""
    if operation.kind != "subscription":
        raise PlanningError("Not a subscription")
    return _plan(supergraph, operation, options or PlanningOptions())


def _plan(
    supergraph: Supergraph, operation: NormalizedOperation, options: PlanningOptions
) -> QueryPlan:
    graph = supergraph.with_override_labels(options.override_labels)
    planner = _Planner(
        graph, query_graph(supergraph, options.override_labels), operation, PlanningBudget(options)
    )
    return build_plan(operation, planner.plan_roots(), graph)


def query_graph(supergraph: Supergraph, labels: frozenset[str]) -> QueryGraph:
    """The query graph of `supergraph` with the progressive override `labels` in force, built
    once (the router builds it when it loads a supergraph)."""
    key = (supergraph.hash, labels)
    found = _GRAPHS.get(key)
    if found is None:
        if len(_GRAPHS) > 64:
            _GRAPHS.clear()
        found = _GRAPHS[key] = build_query_graph(supergraph.with_override_labels(labels))
    return found


# Query graphs per (supergraph hash, override labels in force).
_GRAPHS: dict[tuple[str, frozenset[str]], QueryGraph] = {}
