"""What a subgraph can resolve by itself, and what it can reach through entity keys: questions
answered by walking the federated query graph (`query_graph.py`)."""

from __future__ import annotations

from dataclasses import replace

from router.planning.operation import Fragment, Selection
from router.planning.options import PlanningBudget
from router.planning.query_graph import Node, QueryGraph
from router.supergraph import FieldSet, FieldSetItem, Supergraph


class Capabilities:
    """Questions the planner asks about the supergraph; pure functions of it."""

    def __init__(self, supergraph: Supergraph, graph: QueryGraph, budget: PlanningBudget) -> None:
        self.budget = budget
        self.sg = supergraph
        self.graph = graph
        self._resolves: dict[tuple[str, str, str], bool] = {}
        self.types = supergraph.types
        self.order = {name: index for index, name in enumerate(supergraph.subgraphs)}

    def can_resolve(self, type_name: str, field_name: str, subgraph: str) -> bool:
        key = (type_name, field_name, subgraph)
        found = self._resolves.get(key)
        if found is None:
            found = self._resolves[key] = self._can_resolve(type_name, field_name, subgraph)
        return found

    def _can_resolve(self, type_name: str, field_name: str, subgraph: str) -> bool:
        """Whether the subgraph's node of the type has an edge for the field with no
        conditions to fetch first."""
        edge = self.graph.field_edge(Node(type_name, subgraph), field_name)
        return edge is not None and not edge.conditions and not edge.context

    def field_set_local(
        self, type_name: str, field_set: FieldSet, subgraph: str, provided: FieldSet | None
    ) -> bool:
        for item in field_set:
            if item.type_condition:
                if not self.field_set_local(
                    item.type_condition, item.selections, subgraph, provided
                ):
                    return False
                continue
            sub_provided = provided_at(provided, type_name, item.name)
            if sub_provided is None and not self.can_resolve(type_name, item.name, subgraph):
                return False
            if item.selections:
                child = self.types[type_name].fields[item.name].type_name
                if not self.field_set_local(child, item.selections, subgraph, sub_provided):
                    return False
        return True

    def coverage(
        self, type_name: str, selections: tuple[Selection, ...], subgraph: str, depth: int = 0
    ) -> int:
        """How many of the selected fields `subgraph` resolves itself (to prefer fewer fetches)."""
        self.budget.spend()
        info = self.types.get(type_name)
        if depth > 4 or info is None:
            return 0
        count = 0
        for selection in selections:
            if isinstance(selection, Fragment):
                condition = selection.type_condition or type_name
                count += self.coverage(condition, selection.selections, subgraph, depth)
            elif selection.name in info.fields and self.can_resolve(
                type_name, selection.name, subgraph
            ):
                child = info.fields[selection.name].type_name
                count += 1 + self.coverage(child, selection.selections, subgraph, depth + 1)
        return count

    def concrete_field_set(self, type_name: str, field_set: FieldSet) -> FieldSet:
        """`field_set` with fragments on interfaces and unions replaced by one fragment per
        object type, so a representation can be read by each object's `__typename`."""
        items: list[FieldSetItem] = []
        for item in field_set:
            if item.type_condition is None:
                field = self.types[type_name].fields.get(item.name)
                child = field.type_name if field is not None else type_name
                items.append(
                    replace(item, selections=self.concrete_field_set(child, item.selections))
                )
                continue
            condition = self.types.get(item.type_condition)
            if condition is None or condition.kind == "object":
                inner = self.concrete_field_set(item.type_condition, item.selections)
                items.append(replace(item, selections=inner))
                continue
            if self.types[type_name].kind == "object":
                # On an object the fragment either always or never applies: inline it.
                if type_name in self.sg.possible_types(item.type_condition):
                    items.extend(self.concrete_field_set(type_name, item.selections))
                continue
            possible = self.sg.possible_types(type_name)
            for concrete in self.sg.possible_types(item.type_condition):
                if concrete in possible:
                    inner = self.concrete_field_set(concrete, item.selections)
                    items.append(FieldSetItem("", inner, concrete))
        return tuple(items)


def provided_at(provided: FieldSet | None, type_name: str, field_name: str) -> FieldSet | None:
    if provided is None:
        return None
    for item in provided:
        if item.type_condition:
            if item.type_condition == type_name:
                found = provided_at(item.selections, type_name, field_name)
                if found is not None:
                    return found
        elif item.name == field_name:
            return item.selections
    return None


def selection_size(selections: tuple[Selection, ...]) -> int:
    """How many fields `selections` holds, at every depth."""
    return sum(
        selection_size(s.selections) + (0 if isinstance(s, Fragment) else 1) for s in selections
    )
