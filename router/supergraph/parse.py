"""Reading a Federation supergraph SDL (join v0.1 to v0.5) into the `Supergraph` model."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from graphql import GraphQLSyntaxError, parse
from graphql.language import (
    BooleanValueNode,
    ConstDirectiveNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    EnumValueNode,
    FieldDefinitionNode,
    InputObjectTypeDefinitionNode,
    InterfaceTypeDefinitionNode,
    ListTypeNode,
    ListValueNode,
    NamedTypeNode,
    NonNullTypeNode,
    ObjectTypeDefinitionNode,
    ObjectValueNode,
    ScalarTypeDefinitionNode,
    SchemaDefinitionNode,
    StringValueNode,
    TypeDefinitionNode,
    TypeExtensionNode,
    TypeNode,
    UnionTypeDefinitionNode,
    ValueNode,
    print_ast,
)

from router.supergraph.api_schema import build_api_sdl
from router.supergraph.fieldsets import parse_field_set
from router.supergraph.links import Links, read_links
from router.supergraph.model import (
    ContextArgument,
    EntityKey,
    FieldInfo,
    FieldSource,
    Subgraph,
    Supergraph,
    SupergraphError,
    TypeInfo,
    TypeKind,
    resolvable_sources,
)
from router.supergraph.subgraph_schemas import subgraph_sdls

_KINDS: dict[type[TypeDefinitionNode], TypeKind] = {
    ObjectTypeDefinitionNode: "object",
    InterfaceTypeDefinitionNode: "interface",
    UnionTypeDefinitionNode: "union",
    EnumTypeDefinitionNode: "enum",
    InputObjectTypeDefinitionNode: "input",
    ScalarTypeDefinitionNode: "scalar",
}


def _arguments(directive: ConstDirectiveNode) -> dict[str, ValueNode]:
    return {argument.name.value: argument.value for argument in directive.arguments or ()}


def _str(value: ValueNode | None) -> str | None:
    return value.value if isinstance(value, StringValueNode) else None


def _bool(value: ValueNode | None, default: bool = False) -> bool:
    return value.value if isinstance(value, BooleanValueNode) else default


def _enum(value: ValueNode | None) -> str | None:
    return value.value if isinstance(value, EnumValueNode) else None


def _named(
    directives: Iterable[ConstDirectiveNode] | None, name: str | None
) -> list[ConstDirectiveNode]:
    return [d for d in directives or () if d.name.value == name] if name else []


def _unwrap(type_node: TypeNode) -> tuple[str, int]:
    depth = 0
    while not isinstance(type_node, NamedTypeNode):
        if isinstance(type_node, ListTypeNode):
            depth += 1
        assert isinstance(type_node, ListTypeNode | NonNullTypeNode)
        type_node = type_node.type
    return type_node.name.value, depth


class _Reader:
    def __init__(self, document: DocumentNode, links: Links) -> None:
        self.links = links
        join = links.join
        self.join_version = join.version
        self.d_graph = join.directive("graph")
        self.d_type = join.directive("type")
        self.d_field = join.directive("field")
        self.d_owner = join.directive("owner")
        self.d_implements = join.directive("implements")
        self.d_member = join.directive("unionMember")
        self.d_enum_value = join.directive("enumValue")
        self.d_inaccessible = links.directive("inaccessible", "inaccessible")
        self.d_context = links.directive("context", "context")
        self.graph_enum = join.type_name("Graph")
        self.definitions: list[TypeDefinitionNode] = []
        for definition in document.definitions:
            if isinstance(definition, TypeExtensionNode):
                raise SupergraphError("A supergraph must not contain type extensions")
            if isinstance(definition, TypeDefinitionNode):
                self.definitions.append(definition)
        self.subgraphs = self._read_graphs()
        self.undeclared: set[str] = set()  # types whose subgraph memberships are implicit
        self.by_graph = {s.graph: s.name for s in self.subgraphs.values()}

    def _read_graphs(self) -> dict[str, Subgraph]:
        for definition in self.definitions:
            if (
                isinstance(definition, EnumTypeDefinitionNode)
                and definition.name.value == self.graph_enum
            ):
                found: dict[str, Subgraph] = {}
                for value in definition.values or ():
                    for directive in _named(value.directives, self.d_graph):
                        args = _arguments(directive)
                        name = _str(args.get("name")) or value.name.value.lower()
                        found[name] = Subgraph(name, value.name.value, _str(args.get("url")) or "")
                if not found:
                    raise SupergraphError(f"{self.graph_enum} lists no subgraphs")
                return found
        raise SupergraphError(f"Not a supergraph: enum {self.graph_enum} is missing")

    def graph(self, value: ValueNode | None, where: str) -> str:
        enum_value = _enum(value)
        if enum_value is None or enum_value not in self.by_graph:
            raise SupergraphError(f"{where}: unknown join graph {enum_value!r}")
        return self.by_graph[enum_value]

    def inaccessible(self, node: object) -> bool:
        return bool(_named(getattr(node, "directives", None), self.d_inaccessible))

    def read_type(self, definition: TypeDefinitionNode) -> TypeInfo:
        name = definition.name.value
        kind = _KINDS[type(definition)]
        every = frozenset(self.subgraphs)
        joins = _named(definition.directives, self.d_type)
        subgraphs: set[str] = set()
        keys: list[EntityKey] = []
        interface_object_in: set[str] = set()
        for directive in joins:
            args = _arguments(directive)
            graph = self.graph(args.get("graph"), f"@join__type on {name}")
            subgraphs.add(graph)
            key = _str(args.get("key"))
            if key is not None:
                keys.append(
                    EntityKey(graph, parse_field_set(key), _bool(args.get("resolvable"), True))
                )
            if _bool(args.get("isInterfaceObject")):
                interface_object_in.add(graph)
        in_subgraphs = frozenset(subgraphs) if joins else every
        owner = None
        for directive in _named(definition.directives, self.d_owner):
            owner = self.graph(_arguments(directive).get("graph"), f"@join__owner on {name}")
        fields: dict[str, FieldInfo] = {}
        if isinstance(definition, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode):
            for field_node in definition.fields or ():
                field_info = self.read_field(name, field_node, in_subgraphs, owner)
                fields[field_info.name] = field_info
        extra: dict[str, Any] = {}
        if isinstance(definition, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode):
            extra["interfaces"] = tuple(i.name.value for i in definition.interfaces or ())
            extra["implements_in"] = self.memberships(
                definition, self.d_implements, "interface", name
            )
        if isinstance(definition, UnionTypeDefinitionNode):
            extra["members"] = tuple(m.name.value for m in definition.types or ())
            extra["members_in"] = self.memberships(definition, self.d_member, "member", name)
        if isinstance(definition, EnumTypeDefinitionNode):
            extra["enum_values"] = {
                value.name.value: frozenset(
                    self.graph(_arguments(d).get("graph"), f"@join__enumValue on {name}")
                    for d in _named(value.directives, self.d_enum_value)
                )
                or in_subgraphs
                for value in definition.values or ()
            }
        return TypeInfo(
            name=name,
            kind=kind,
            subgraphs=in_subgraphs,
            keys=tuple(keys),
            interface_object_in=frozenset(interface_object_in),
            fields=fields,
            inaccessible=self.inaccessible(definition),
            contexts=frozenset(
                _str(_arguments(d).get("name")) or ""
                for d in _named(definition.directives, self.d_context)
            ),
            **extra,
        )

    def memberships(
        self, definition: TypeDefinitionNode, directive: str | None, argument: str, name: str
    ) -> dict[str, frozenset[str]]:
        """Per subgraph, the interfaces (or union members) it declares for this type; types
        without any such directive are completed from what each subgraph defines."""
        declared = _named(definition.directives, directive)
        if not declared:
            self.undeclared.add(name)
            return {}
        found: dict[str, set[str]] = {}
        for node in declared:
            args = _arguments(node)
            graph = self.graph(args.get("graph"), f"@{directive} on {name}")
            found.setdefault(graph, set()).add(_str(args.get(argument)) or "")
        return {graph: frozenset(names) for graph, names in found.items()}

    def context_arguments(self, value: ValueNode | None, where: str) -> tuple[ContextArgument, ...]:
        if not isinstance(value, ListValueNode):
            return ()
        found = []
        for item in value.values:
            if not isinstance(item, ObjectValueNode):
                raise SupergraphError(f"{where}: invalid contextArguments")
            fields = {f.name.value: _str(f.value) for f in item.fields}
            name, type_, context = fields.get("name"), fields.get("type"), fields.get("context")
            selection = (fields.get("selection") or "").strip()
            if not (name and type_ and context and selection):
                raise SupergraphError(f"{where}: incomplete contextArguments")
            if selection.startswith("{") and selection.endswith("}"):
                selection = selection[1:-1]
            found.append(ContextArgument(name, type_, context, parse_field_set(selection)))
        return tuple(found)

    def read_field(
        self,
        parent: str,
        node: FieldDefinitionNode,
        in_subgraphs: frozenset[str],
        owner: str | None,
    ) -> FieldInfo:
        name = node.name.value
        where = f"{parent}.{name}"
        type_name, depth = _unwrap(node.type)
        sources: list[FieldSource] = []
        joins = _named(node.directives, self.d_field)
        for directive in joins:
            args = _arguments(directive)
            if "graph" not in args:
                continue  # a field no subgraph resolves by itself (e.g. from @interfaceObject)
            context_arguments = self.context_arguments(args.get("contextArguments"), where)
            sources.append(
                FieldSource(
                    subgraph=self.graph(args.get("graph"), f"@join__field on {where}"),
                    external=_bool(args.get("external")),
                    requires=parse_field_set(_str(args.get("requires")) or ""),
                    provides=parse_field_set(_str(args.get("provides")) or ""),
                    override=_str(args.get("override")),
                    override_label=_str(args.get("overrideLabel")),
                    used_overridden=_bool(args.get("usedOverridden")),
                    context_arguments=context_arguments,
                    type_ref=_str(args.get("type")),
                )
            )
        if not joins:
            graphs = [owner] if owner else sorted(in_subgraphs, key=list(self.subgraphs).index)
            sources = [FieldSource(graph) for graph in graphs]
        # Progressive overrides start out not in force (see `Supergraph.with_override_labels`).
        resolvable = resolvable_sources(sources, frozenset())
        arguments = tuple((a.name.value, print_ast(a.type)) for a in node.arguments or ())
        return FieldInfo(
            name=name,
            type_name=type_name,
            type_ref=print_ast(node.type),
            list_depth=depth,
            sources=tuple(sources),
            resolvable_in=resolvable,
            arguments=arguments,
        )


def _implementations(types: dict[str, TypeInfo]) -> dict[str, tuple[str, ...]]:
    found: dict[str, list[str]] = {}
    for info in types.values():
        if info.kind != "object":
            continue
        for interface in info.interfaces:
            found.setdefault(interface, []).append(info.name)
    return {name: tuple(objects) for name, objects in found.items()}


def _complete_memberships(types: dict[str, TypeInfo], undeclared: set[str]) -> None:
    """Without `@join__implements`/`@join__unionMember`, a subgraph has whatever it defines."""
    for name in undeclared:
        info = types[name]
        if info.kind in {"object", "interface"}:
            types[name] = replace(
                info,
                implements_in={
                    graph: frozenset(i for i in info.interfaces if graph in types[i].subgraphs)
                    for graph in info.subgraphs
                },
            )
        elif info.kind == "union":
            types[name] = replace(
                info,
                members_in={
                    graph: frozenset(m for m in info.members if graph in types[m].subgraphs)
                    for graph in info.subgraphs
                },
            )


def _roots(document: DocumentNode) -> dict[str, str]:
    for definition in document.definitions:
        if isinstance(definition, SchemaDefinitionNode):
            return {op.operation.value: op.type.name.value for op in definition.operation_types}
    return {}


def parse_supergraph(sdl: str) -> Supergraph:
    """Read a supergraph SDL; raises `SupergraphError` naming what is wrong or unsupported."""
    try:
        document = parse(sdl, no_location=True)
    except GraphQLSyntaxError as exc:
        raise SupergraphError(f"Supergraph SDL syntax error: {exc.message}") from exc
    schema_node = next(
        (d for d in document.definitions if isinstance(d, SchemaDefinitionNode)), None
    )
    links = read_links(schema_node)
    reader = _Reader(document, links)
    types: dict[str, TypeInfo] = {}
    for definition in reader.definitions:
        if links.is_spec_element(definition.name.value):
            continue
        types[definition.name.value] = reader.read_type(definition)
    _complete_memberships(types, reader.undeclared)
    roots = _roots(document)
    query = roots.get("query", "Query")
    if query not in types:
        raise SupergraphError("The supergraph has no query type")
    api_sdl = build_api_sdl(document, links)
    return Supergraph(
        subgraphs=reader.subgraphs,
        types=types,
        query_type=query,
        mutation_type=roots.get("mutation", "Mutation" if "Mutation" in types else None),
        subscription_type=roots.get(
            "subscription", "Subscription" if "Subscription" in types else None
        ),
        api_sdl=api_sdl,
        hash=hashlib.sha256(sdl.encode()).hexdigest(),
        implementations=_implementations(types),
        subgraph_sdls=subgraph_sdls(
            document, links, {s.graph: s.name for s in reader.subgraphs.values()}, query
        ),
    )
