"""Planning across `@interfaceObject`: subgraphs that know an entity interface only as one
object type. Their fields are fetched with the interface's name as `__typename` (an input
rewrite), and their values get their concrete type from a subgraph that has the interface."""

from __future__ import annotations

from typing import TYPE_CHECKING

from router.planning.groups import FetchGroup
from router.planning.operation import ConditionTerm, Field, Selection
from router.planning.query_graph import Edge, Node
from router.planning.selections import OutSelections

if TYPE_CHECKING:
    from router.planning.planner import _Planner


def resolve_concrete_type(
    planner: _Planner,
    group: FetchGroup,
    out: OutSelections,
    interface: str,
    selections: tuple[Selection, ...],
    path: tuple[str, ...],
    conditions: tuple[ConditionTerm, ...],
) -> bool:
    """A value of `interface` from a subgraph that has it as an object: ask a subgraph with the
    real interface for `__typename`, and plan the selections there per concrete type."""
    info = planner.types[interface]
    if group.subgraph not in info.interface_object_in:
        return False
    own_keys = list(info.keys_in(group.subgraph))
    # The key edges from this interface object to the subgraphs that have the interface.
    for edge in planner.graph.jumps(Node(interface, group.subgraph)):
        if (
            edge.kind != "key"
            or edge.tail is None
            or edge.tail.subgraph in info.interface_object_in
            or not planner.field_set_local(interface, edge.conditions, group.subgraph, None)
        ):
            continue
        out.field("__typename", "__typename")
        out.add_field_set(edge.conditions)
        for own in own_keys:
            out.add_field_set(own.fields)
        dependent = planner.dependent(edge.tail.subgraph, path, conditions, {group.id})
        dependent.add_requirement(interface, edge.conditions, edge.conditions)
        dependent.refines_typename = True
        fragment = dependent.selections.fragment(interface)
        planner.plan_value(
            dependent, fragment.selections, interface, selections, path, None, conditions
        )
        return True
    return False


def jump_to_interface_object(
    planner: _Planner,
    group: FetchGroup,
    out: OutSelections,
    type_name: str,
    selection: Field,
    edge: Edge,
    path: tuple[str, ...],
    conditions: tuple[ConditionTerm, ...],
) -> None:
    """Fetch a field an implementation gets from an interface object (`@interfaceObject`)
    along the interface-object edge `edge`, whose key the current fetch has: the
    representation is sent with the interface's name as its `__typename`."""
    assert edge.tail is not None
    interface, subgraph, key = edge.name, edge.tail.subgraph, edge.conditions
    field = planner.types[interface].fields[selection.name]
    out.field("__typename", "__typename")
    out.add_field_set(key)
    source = field.source(subgraph)
    requires, deps = planner.plan_requires(group, out, type_name, source, path, None, conditions)
    deps.add(group.id)
    requirement = key + requires
    dependent = planner.dependent(subgraph, path, conditions, deps, (type_name, requirement))
    dependent.add_requirement(type_name, requirement, key)
    dependent.typename_rewrites[type_name] = interface
    fragment = dependent.selections.fragment(interface)
    planner.place(
        dependent,
        fragment.selections,
        selection,
        field,
        path,
        source.provides if source is not None and source.provides else None,
        conditions,
    )
