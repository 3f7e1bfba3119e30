"""The query planner: (supergraph, normalized operation) -> QueryPlan, pure and deterministic.

Planning walks the federated query graph (`query_graph.py`) from the root entry points down
the operation's selections. Each field is placed by the cheapest of its paths from the node of
the fetch being built (`field_paths.py`): its own edge there, or a key or interface-object
jump to an entity fetch, costed by the cost model (`cost.py`: fewest entity fetches, then
fewest sequential steps) with conditions counted as the fetches they take. Conditions
(`@requires`, keys not available locally, `@fromContext` values) are planned like client
fields and become dependencies of the fetch that needs them.
"""

from __future__ import annotations

from dataclasses import replace

from router.planning.capabilities import Capabilities, provided_at, selection_size
from router.planning.contexts import ContextUses, plan_contexts, rename_variable
from router.planning.cost import Cost, CostModel, needs_object_type
from router.planning.errors import PlanningError
from router.planning.field_paths import (
    FieldPath,
    PathCost,
    field_paths,
    jump_paths,
    provided_here,
    selection_cover,
)
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
from router.planning.query_graph import QueryGraph, build_query_graph
from router.planning.selections import OutSelections
from router.planning.tree import build_plan
from router.supergraph import FieldInfo, FieldSet, FieldSource, Supergraph
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
        # Per object being planned, its selections and (once asked) the subgraphs that best
        # cover the fields it must fetch elsewhere: a jump is weighed against its siblings.
        self.siblings: list[tuple[Selection, ...]] = []
        self.covers: list[dict[str, int] | None] = []
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
                and group.subgraph == subgraph
                and group.path == path
                and group.conditions == conditions
                and group.run == self.run
                and (requirement is None or group.accepts(*requirement))
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
        """Plan `selections` on a value of `type_name` that the fetch `group` is at: an object
        directly; an interface on the interface itself when only its own fields are asked (or
        its subgraph knows no object type of it), through a subgraph that has the interface
        when this one has it as an `@interfaceObject`; otherwise per possible object type."""
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
        ) and not needs_object_type(interface, selections)

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
        """Plan one selection set on an object the fetch `group` is at, field by field. The
        selection set is the unit the jumps are weighed in: its fields that `group`'s subgraph
        cannot answer are covered by as few target subgraphs as possible (`cover_rank`), and
        fields that jump to a target already fetched at this path join that fetch."""
        self.ancestry.append((type_name, path, group, out))
        self.siblings.append(selections)
        self.covers.append(None)
        try:
            self._plan_selections(group, out, type_name, selections, path, provided, conditions)
        finally:
            self.ancestry.pop()
            self.siblings.pop()
            self.covers.pop()

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
        """Place one field of the object `group` is at: the cheapest of its paths in the query
        graph (`field_paths`: its own edge here, a key jump, an interface-object jump, each
        costed by the fetches and steps it and its selection take), or, when no one path
        resolves all of its selection, in parts (`plan_in_parts`)."""
        self.budget.spend()
        if selection.name not in self.types[type_name].fields:
            raise PlanningError(f"Unknown field {type_name}.{selection.name}")
        conditions = unique_conditions(conditions + selection.conditions)
        paths = field_paths(self, group, type_name, selection, path, provided, conditions)
        if paths:
            best = min(paths, key=_path_cost)
            self.follow(best, group, out, type_name, selection, path, provided, conditions)
        else:
            self.plan_in_parts(group, out, type_name, selection, path, provided, conditions)

    def follow(
        self,
        chosen: FieldPath,
        group: FetchGroup,
        out: OutSelections,
        type_name: str,
        selection: Field,
        path: tuple[str, ...],
        provided: FieldSet | None,
        conditions: tuple[ConditionTerm, ...],
    ) -> None:
        """Plan a field along the path chosen for it: in the fetch being built, or in the
        entity fetch its jump leads to (joining one already planned at this path when it
        can take the representation)."""
        if chosen.kind == "here":
            sub_provided = provided_here(self, type_name, selection, group.subgraph, provided)
            self.place(group, out, selection, chosen.field, path, sub_provided, conditions)
            return
        assert chosen.edge is not None
        if chosen.kind == "interface_object":
            jump_to_interface_object(
                self, group, out, type_name, selection, chosen.edge, path, conditions
            )
            return
        target, key = chosen.target, chosen.edge.conditions
        info = chosen.field
        deps = {group.id}
        out.field("__typename", "__typename")
        if chosen.key_local:
            out.add_field_set(key)
        else:
            deps |= self.plan_requirement(group, out, type_name, key, path, provided, conditions)
        source = info.source(target)
        requires, required_by = self.plan_requires(
            group, out, type_name, source, path, provided, conditions
        )
        deps |= required_by
        requirement = key + requires
        uses: ContextUses = []
        if source is not None and source.context_arguments:
            selection, context_deps, uses = plan_contexts(
                self, source.context_arguments, selection, path, conditions
            )
            deps |= context_deps
        dependent = self.dependent(target, path, conditions, deps, (type_name, requirement))
        dependent.add_requirement(type_name, requirement, key)
        for use in uses:
            variable = f"contextualArgument_{len(dependent.context_uses)}"
            selection = rename_variable(selection, use[0], variable)
            dependent.context_uses.append((variable, *use[1:]))
        fragment = dependent.selections.fragment(type_name)
        sub_provided = source.provides if source is not None and source.provides else None
        self.place(dependent, fragment.selections, selection, info, path, sub_provided, conditions)

    def plan_in_parts(
        self,
        group: FetchGroup,
        out: OutSelections,
        type_name: str,
        selection: Field,
        path: tuple[str, ...],
        provided: FieldSet | None,
        conditions: tuple[ConditionTerm, ...],
        optional: bool = False,
    ) -> bool:
        """A field no one path resolves with all of its selection (a value type whose fields
        live in several subgraphs, none reachable from another by key). When the current
        subgraph answers the field, what its paths reach stays here and the rest goes by an
        entity fetch of the parent (a parent entity call); otherwise the key target reaching
        the largest part takes it, and the rest is planned again. With `optional`, False
        when no part can be fetched (else an error)."""
        info = self.types[type_name].fields[selection.name]
        here = group.subgraph
        if provided_at(provided, type_name, selection.name) is not None or self.can_resolve(
            type_name, selection.name, here
        ):
            sub_provided = provided_here(self, type_name, selection, here, provided)
            part, rest = self.costs.partition(
                info.type_name_in(here), selection.selections, here, sub_provided
            )
            if (
                part
                and rest
                and self.fetch_elsewhere(
                    group,
                    out,
                    type_name,
                    replace(selection, selections=rest),
                    path,
                    provided,
                    conditions,
                )
            ):
                selection = replace(selection, selections=part)
            # Without a part elsewhere, the whole selection is planned here, and what no path
            # reaches fails below, named.
            self.place(group, out, selection, info, path, sub_provided, conditions)
            return True
        return self.parts_elsewhere(
            group, out, type_name, selection, path, provided, conditions, optional
        )

    def parts_elsewhere(
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
        """Fetch a field the current subgraph lacks from several by key: the target reaching
        the largest part of its selection takes that part, and the rest is fetched again
        (by one jump, or in parts)."""
        info = self.types[type_name].fields[selection.name]
        here = group.subgraph
        best: tuple[int, tuple[Selection, ...], tuple[Selection, ...]] | None = None
        for target in self.costs.jump_targets(type_name, here, provided):
            if target.type_name != type_name or target.subgraph not in info.resolvable_in:
                continue
            part, rest = self.costs.partition(
                info.type_name_in(target.subgraph), selection.selections, target.subgraph, None
            )
            size = selection_size(part)
            if part and rest and (best is None or size > best[0]):
                best = (size, part, rest)
        if best is None:
            if optional:
                return False
            raise PlanningError(
                f"{type_name}.{selection.name} cannot be reached from subgraph "
                f"'{here}': no subgraph resolving it has a usable @key on {type_name}"
            )
        _, part, rest = best
        self.fetch_elsewhere(
            group,
            out,
            type_name,
            replace(selection, selections=part),
            path,
            provided,
            conditions,
            optional=False,
        )
        return self.fetch_elsewhere(
            group,
            out,
            type_name,
            replace(selection, selections=rest),
            path,
            provided,
            conditions,
            optional,
        )

    def fetch_elsewhere(
        self,
        group: FetchGroup,
        out: OutSelections,
        type_name: str,
        selection: Field,
        path: tuple[str, ...],
        provided: FieldSet | None,
        conditions: tuple[ConditionTerm, ...],
        optional: bool = True,
    ) -> bool:
        """Fetch `selection` by the cheapest jump from here, or in parts over several."""
        paths = jump_paths(self, group, type_name, selection, path, provided, conditions)
        if paths:
            best = min(paths, key=_path_cost)
            self.follow(best, group, out, type_name, selection, path, provided, conditions)
            return True
        return self.parts_elsewhere(
            group, out, type_name, selection, path, provided, conditions, optional
        )

    def cover_rank(self, type_name: str, here: str, provided: FieldSet | None, target: str) -> int:
        """Where `target` stands in the cover of the selection set being planned (0 first;
        past the end when it is not in it); computed once per selection set."""
        if not self.siblings or self.ancestry[-1][0] != type_name:
            return 0
        ranks = self.covers[-1]
        if ranks is None:
            ranks = self.covers[-1] = selection_cover(
                self, type_name, here, provided, self.siblings[-1]
            )
        return ranks.get(target, len(ranks))

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
        """Put the field in `group`'s selection at `out`, then plan its own selection from the
        node it leads to in that subgraph (with what a `@provides` gives there)."""
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
        if (
            self.operation.kind != "query"
            or not root_field.selections
            or self.costs.reaches(
                info.type_name_in(subgraph), root_field.selections, subgraph, None
            )
        ):
            return [(subgraph, root_field)]
        parts: list[tuple[str, Field]] = []
        rest = root_field.selections
        candidates = set(self.root_entries(root_type, root_field))
        while rest:
            best: tuple[int, str, tuple[Selection, ...], tuple[Selection, ...]] | None = None
            for candidate in sorted(candidates, key=self.order.__getitem__):
                part, left = self.costs.partition(
                    info.type_name_in(candidate), rest, candidate, None
                )
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


def _path_cost(path: FieldPath) -> PathCost:
    return path.cost


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
        raise PlanningError("A subscription is planned with plan_subscription")
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
