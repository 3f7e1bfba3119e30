"""The federated query graph: a node per composite type per subgraph, and the edges a query can
follow between them (fields, key jumps, interface objects, downcasts), built once per supergraph.

A path through this graph is a way to resolve a selection: its field edges are answered by the
subgraph of the node they leave, a key edge is an `_entities` fetch, and the conditions on an
edge (a key's fields, `@requires`, `@fromContext`) must be resolved first, by another path.
`@provides` makes a copy of the node it leads to, on which the provided fields are resolvable
(only on that path, as the subgraph provides them only there). Pure: supergraph in, frozen
graph out, printable for snapshot tests.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Literal

from router.supergraph import FieldSet, Supergraph, print_field_set
from router.supergraph.model import FieldInfo, TypeInfo

EdgeKind = Literal["field", "key", "interface_object", "downcast"]
_COMPOSITE = frozenset({"object", "interface", "union"})


@dataclass(frozen=True, slots=True, order=True)
class Node:
    """A type as one subgraph sees it; `provided_by` names the `@provides` field
    (`Type.field`) whose path this copy of the node lies on, "" for the node itself."""

    type_name: str
    subgraph: str
    provided_by: str = ""

    def print(self) -> str:
        own = f"{self.type_name}/{self.subgraph}"
        return f"{own}[{self.provided_by}]" if self.provided_by else own


@dataclass(frozen=True, slots=True)
class Edge:
    """One step a query can take from `head`.

    - `field`: the subgraph of `head` answers `name`; `tail` is the field's composite type in
      that subgraph (None for a leaf). `conditions` are its `@requires`, `context` whether it
      takes `@fromContext` arguments: both must be fetched before (from another path).
    - `key`: an `_entities` fetch of the same object from `tail.subgraph`, by the key
      `conditions`, which must be resolved where the object is.
    - `interface_object`: like `key`, to a subgraph that has the object's interface `name`
      as an `@interfaceObject` (the representation is sent with the interface's name).
    - `downcast`: `... on name`, an object type the abstract `head` can be in its subgraph.
    """

    kind: EdgeKind
    head: Node
    tail: Node | None
    name: str
    conditions: FieldSet = ()
    context: bool = False

    def print(self) -> str:
        tail = self.tail.print() if self.tail is not None else "."
        if self.kind == "field":
            label = self.name
        elif self.kind == "downcast":
            label = f"... on {self.name}"
        else:
            label = f"{self.kind}({print_field_set(self.conditions)})"
        if self.kind == "field" and self.conditions:
            label += f" requires({print_field_set(self.conditions)})"
        if self.context:
            label += " context"
        return f"{self.head.print()} -> {tail}: {label}"


@dataclass(frozen=True, slots=True)
class QueryGraph:
    """Nodes, their outgoing edges, and per operation kind the root node of each subgraph
    that serves that root type (where a plan can start)."""

    nodes: frozenset[Node]
    edges: Mapping[Node, tuple[Edge, ...]]
    roots: Mapping[str, tuple[Node, ...]]
    # Per node and field name, the edge answering it there (the planner's most asked question).
    _fields: Mapping[tuple[Node, str], Edge] = field(default_factory=dict)

    def out(self, node: Node) -> tuple[Edge, ...]:
        return self.edges.get(node, ())

    def field_edge(self, node: Node, name: str) -> Edge | None:
        """The edge resolving field `name` on `node`, if its subgraph can answer it there."""
        return self._fields.get((node, name))

    def jumps(self, node: Node) -> Iterator[Edge]:
        """The entity fetches that can continue a path from `node`: key and interface-object
        edges, in the supergraph's subgraph order."""
        for edge in self.out(node):
            if edge.kind in ("key", "interface_object"):
                yield edge

    def print(self) -> str:
        """Every root and edge, one a line, sorted (stable for snapshots)."""
        lines = [
            f"{kind} -> {node.print()}"
            for kind, nodes in sorted(self.roots.items())
            for node in nodes
        ]
        lines += sorted(edge.print() for edges in self.edges.values() for edge in edges)
        return "\n".join(lines)


def build_query_graph(supergraph: Supergraph) -> QueryGraph:
    """The query graph of `supergraph` (with its progressive overrides already applied)."""
    return _Builder(supergraph).build()


class _Builder:
    def __init__(self, supergraph: Supergraph) -> None:
        self.sg = supergraph
        self.types = supergraph.types
        self.order = {name: index for index, name in enumerate(supergraph.subgraphs)}
        self.edges: dict[Node, list[Edge]] = {}

    def build(self) -> QueryGraph:
        for info in self.types.values():
            if info.kind not in _COMPOSITE:
                continue
            for subgraph in sorted(info.subgraphs, key=self.order.__getitem__):
                self.add_node(Node(info.name, subgraph), ())
        roots: dict[str, tuple[Node, ...]] = {}
        for kind in ("query", "mutation", "subscription"):
            root = self.sg.root_type(kind)
            if root is not None and root in self.types:
                roots[kind] = tuple(
                    Node(root, s)
                    for s in sorted(self.types[root].subgraphs, key=self.order.__getitem__)
                )
        frozen = {node: tuple(edges) for node, edges in self.edges.items()}
        fields = {
            (node, edge.name): edge
            for node, edges in frozen.items()
            for edge in edges
            if edge.kind == "field"
        }
        return QueryGraph(frozenset(frozen), frozen, roots, fields)

    def add_node(self, node: Node, provided: FieldSet) -> None:
        """`node` and its edges; `provided` is what a `@provides` makes resolvable on it."""
        if node in self.edges:
            return
        edges = self.edges[node] = []
        info = self.types[node.type_name]
        if info.kind == "object" or node.subgraph in info.interface_object_in:
            for field_info in info.fields.values():
                edge = self.field_edge(node, info, field_info, provided)
                if edge is not None:
                    edges.append(edge)
        else:
            edges.extend(self.interface_fields(node, info, provided))
            for possible in self.sg.possible_types(node.type_name, node.subgraph):
                tail = Node(possible, node.subgraph, node.provided_by)
                edges.append(Edge("downcast", node, tail, possible))
                if node.provided_by:
                    self.add_node(tail, _on_type(provided, possible))
        edges.extend(self.jumps(node, info))

    def interface_fields(self, node: Node, info: TypeInfo, provided: FieldSet) -> Iterator[Edge]:
        """An interface's fields its subgraph resolves on the interface (a union has none);
        the object types' own fields are reached by the downcasts."""
        for field_info in info.fields.values():
            if (
                _resolves(info, field_info, node.subgraph)
                or _provided_item(provided, field_info.name) is not None
            ):
                tail = self.field_tail(node, field_info, provided)
                yield Edge("field", node, tail, field_info.name)

    def field_edge(
        self, node: Node, info: TypeInfo, field_info: FieldInfo, provided: FieldSet
    ) -> Edge | None:
        source = field_info.source(node.subgraph)
        in_provides = _provided_item(provided, field_info.name) is not None
        if not in_provides and not _resolves(info, field_info, node.subgraph):
            return None
        tail = self.field_tail(node, field_info, provided)
        if in_provides or source is None:
            return Edge("field", node, tail, field_info.name)
        return Edge(
            "field",
            node,
            tail,
            field_info.name,
            source.requires,
            bool(source.context_arguments),
        )

    def field_tail(self, node: Node, field_info: FieldInfo, provided: FieldSet) -> Node | None:
        type_name = field_info.type_name_in(node.subgraph)
        if type_name not in self.types or self.types[type_name].kind not in _COMPOSITE:
            return None
        item = _provided_item(provided, field_info.name)
        if item is not None and item.selections:
            # Inside a provided value: the provision goes on below this field.
            owner = f"{node.provided_by}.{field_info.name}"
            selections = item.selections
        else:
            # The field's own `@provides` (not nested in another: a field providing its own
            # type again, as `Book.similar: Book @provides(...)`, ends at one copy).
            source = field_info.source(node.subgraph)
            if source is None or not source.provides:
                return Node(type_name, node.subgraph)
            owner = f"{node.type_name}.{field_info.name}"
            selections = source.provides
        tail = Node(type_name, node.subgraph, owner)
        self.add_node(tail, selections)
        return tail

    def jumps(self, node: Node, info: TypeInfo) -> Iterator[Edge]:
        """Key edges to every subgraph with a resolvable key on the type, then
        interface-object edges to the subgraphs that have one of its interfaces as an object.
        A key edge back to the node's own subgraph is the entity fetch that follows fetching
        a field's conditions (`@requires`, `@fromContext`) elsewhere."""
        for key in sorted(info.keys, key=lambda k: self.order[k.subgraph]):
            if key.resolvable:
                yield Edge("key", node, Node(info.name, key.subgraph), info.name, key.fields)
        if info.kind != "object":
            return
        for interface in info.interfaces:
            owner = self.types.get(interface)
            if owner is None:
                continue
            for key in sorted(owner.keys, key=lambda k: self.order[k.subgraph]):
                if (
                    key.resolvable
                    and key.subgraph in owner.interface_object_in
                    and key.subgraph != node.subgraph
                ):
                    tail = Node(interface, key.subgraph)
                    yield Edge("interface_object", node, tail, interface, key.fields)


def _resolves(info: TypeInfo, field_info: FieldInfo, subgraph: str) -> bool:
    """Whether `subgraph` answers the field (perhaps under conditions): it resolves it, or it
    is one of its key fields it does not mark `@external`."""
    if subgraph in field_info.resolvable_in:
        return True
    source = field_info.source(subgraph)
    if source is not None and source.external:
        return False
    return any(
        item.name == field_info.name and not item.type_condition
        for key in info.keys
        if key.subgraph == subgraph
        for item in key.fields
    )


def _provided_item(provided: FieldSet, name: str) -> _Provided | None:
    for item in provided:
        if not item.type_condition and item.name == name:
            return _Provided(item.selections)
    return None


@dataclass(frozen=True, slots=True)
class _Provided:
    selections: FieldSet


def _on_type(provided: FieldSet, type_name: str) -> FieldSet:
    """What a `@provides` gives on one object type of an abstract value: its own fields and
    those under `... on type_name`."""
    found = [item for item in provided if not item.type_condition]
    for item in provided:
        if item.type_condition == type_name:
            found.extend(item.selections)
    return tuple(found)
