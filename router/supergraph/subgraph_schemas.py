"""Each subgraph's own schema, read back from the supergraph's join directives.

What the planner checks every fetch against before it is sent: the types, fields (with the
subgraph's own field types), arguments, union members, interfaces and enum values one
subgraph declares, plus `_Any`, `_Entity` and `_entities` for its resolvable entities.
"""

from __future__ import annotations

from graphql import print_ast
from graphql.language import (
    BooleanValueNode,
    DirectiveNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    EnumValueNode,
    FieldDefinitionNode,
    InputObjectTypeDefinitionNode,
    InputValueDefinitionNode,
    InterfaceTypeDefinitionNode,
    ListValueNode,
    ObjectTypeDefinitionNode,
    ObjectValueNode,
    ScalarTypeDefinitionNode,
    StringValueNode,
    TypeDefinitionNode,
    UnionTypeDefinitionNode,
)

from router.supergraph.links import Links

_BUILT_IN_SCALARS = {"String", "Int", "Float", "Boolean", "ID"}


class _Join:
    def __init__(self, links: Links, graphs: dict[str, str]) -> None:
        join = links.join
        self.links = links
        self.graphs = graphs  # join__Graph enum value -> subgraph name
        self.d_type = join.directive("type")
        self.d_field = join.directive("field")
        self.d_implements = join.directive("implements")
        self.d_member = join.directive("unionMember")
        self.d_enum_value = join.directive("enumValue")

    def named(self, node: object, name: str) -> list[dict[str, object]]:
        found = []
        directives: tuple[DirectiveNode, ...] = getattr(node, "directives", None) or ()
        for directive in directives:
            if directive.name.value == name:
                found.append({a.name.value: _value(a.value) for a in directive.arguments or ()})
        return found

    def graph(self, arguments: dict[str, object]) -> str | None:
        value = arguments.get("graph")
        return self.graphs.get(value) if isinstance(value, str) else None


def _value(node: object) -> object:
    if isinstance(node, StringValueNode | EnumValueNode):
        return node.value
    if isinstance(node, BooleanValueNode):
        return node.value
    if isinstance(node, ListValueNode):
        return [_value(item) for item in node.values]
    if isinstance(node, ObjectValueNode):
        return {item.name.value: _value(item.value) for item in node.fields}
    return None


def _arguments(arguments: tuple[InputValueDefinitionNode, ...] | None) -> str:
    if not arguments:
        return ""
    parts = []
    for argument in arguments:
        text = f"{argument.name.value}: {print_ast(argument.type)}"
        if argument.default_value is not None:
            text += f" = {print_ast(argument.default_value)}"
        parts.append(text)
    return "(" + ", ".join(parts) + ")"


class _Slicer:
    """The definitions of one supergraph, sliced per subgraph."""

    def __init__(self, document: DocumentNode, links: Links, graphs: dict[str, str]) -> None:
        self.join = _Join(links, graphs)
        self.definitions = [
            d
            for d in document.definitions
            if isinstance(d, TypeDefinitionNode) and not links.is_spec_element(d.name.value)
        ]
        self.every = frozenset(graphs.values())
        self.in_graphs = {d.name.value: self.type_graphs(d) for d in self.definitions}

    def type_graphs(self, definition: TypeDefinitionNode) -> frozenset[str]:
        joins = self.join.named(definition, self.join.d_type or "")
        if not joins:
            return self.every
        return frozenset(g for g in (self.join.graph(j) for j in joins) if g)

    def field_line(self, node: FieldDefinitionNode, subgraph: str) -> str | None:
        joins = self.join.named(node, self.join.d_field or "")
        type_text = print_ast(node.type)
        if joins:
            mine = [j for j in joins if self.join.graph(j) == subgraph]
            if not mine:
                return None
            override = mine[0].get("type")
            if isinstance(override, str):
                type_text = override
            # `@fromContext` arguments are the subgraph's, not the supergraph's.
            contextual = mine[0].get("contextArguments")
            if isinstance(contextual, list):
                extra = [
                    f"{item['name']}: {item['type']}"
                    for item in contextual
                    if isinstance(item, dict)
                ]
                arguments = _arguments(node.arguments)
                inner = ", ".join([arguments[1:-1], *extra] if arguments else extra)
                return f"  {node.name.value}({inner}): {type_text}"
        return f"  {node.name.value}{_arguments(node.arguments)}: {type_text}"

    def sdl(self, subgraph: str, query_type: str) -> str:
        blocks: list[str] = []
        entities: list[str] = []
        query_lines: list[str] = []
        for definition in self.definitions:
            name = definition.name.value
            if subgraph not in self.in_graphs[name]:
                continue
            if isinstance(definition, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode):
                joins = [
                    j
                    for j in self.join.named(definition, self.join.d_type or "")
                    if self.join.graph(j) == subgraph
                ]
                interface_object = any(j.get("isInterfaceObject") is True for j in joins)
                lines = [
                    line
                    for field in definition.fields or ()
                    if (line := self.field_line(field, subgraph)) is not None
                ]
                if name == query_type:
                    query_lines = lines
                    continue
                if not lines:
                    continue
                is_object = isinstance(definition, ObjectTypeDefinitionNode) or interface_object
                implements = [] if interface_object else self.implements(definition, subgraph)
                head = ("type " if is_object else "interface ") + name
                if implements:
                    head += " implements " + " & ".join(implements)
                blocks.append(head + " {\n" + "\n".join(lines) + "\n}")
                resolvable = any(
                    j.get("key") is not None and j.get("resolvable") is not False for j in joins
                )
                if is_object and resolvable:
                    entities.append(name)
            elif isinstance(definition, UnionTypeDefinitionNode):
                members = self.members(definition, subgraph)
                if members:
                    blocks.append(f"union {name} = " + " | ".join(members))
            elif isinstance(definition, EnumTypeDefinitionNode):
                values = self.enum_values(definition, subgraph)
                if values:
                    blocks.append(f"enum {name} {{ " + " ".join(values) + " }")
            elif isinstance(definition, InputObjectTypeDefinitionNode):
                fields = []
                for field in definition.fields or ():
                    joins = self.join.named(field, self.join.d_field or "")
                    if joins and not any(self.join.graph(j) == subgraph for j in joins):
                        continue
                    text = f"  {field.name.value}: {print_ast(field.type)}"
                    if field.default_value is not None:
                        text += f" = {print_ast(field.default_value)}"
                    fields.append(text)
                if fields:
                    blocks.append(f"input {name} {{\n" + "\n".join(fields) + "\n}")
            elif isinstance(definition, ScalarTypeDefinitionNode) and (
                name not in _BUILT_IN_SCALARS
            ):
                blocks.append(f"scalar {name}")
        blocks.append("scalar _Any")
        if entities:
            blocks.append("union _Entity = " + " | ".join(entities))
            query_lines.append("  _entities(representations: [_Any!]!): [_Entity]!")
        query_lines.append("  _service: String")
        blocks.append(f"type {query_type} {{\n" + "\n".join(query_lines) + "\n}")
        return "\n\n".join(blocks)

    def implements(
        self, definition: ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode, subgraph: str
    ) -> list[str]:
        declared = self.join.named(definition, self.join.d_implements or "")
        if declared:
            return [str(d.get("interface")) for d in declared if self.join.graph(d) == subgraph]
        return [
            i.name.value
            for i in definition.interfaces or ()
            if subgraph in self.in_graphs.get(i.name.value, frozenset())
        ]

    def members(self, definition: UnionTypeDefinitionNode, subgraph: str) -> list[str]:
        declared = self.join.named(definition, self.join.d_member or "")
        if declared:
            return [str(d.get("member")) for d in declared if self.join.graph(d) == subgraph]
        return [
            m.name.value
            for m in definition.types or ()
            if subgraph in self.in_graphs.get(m.name.value, frozenset())
        ]

    def enum_values(self, definition: EnumTypeDefinitionNode, subgraph: str) -> list[str]:
        found = []
        for value in definition.values or ():
            joins = self.join.named(value, self.join.d_enum_value or "")
            if not joins or any(self.join.graph(j) == subgraph for j in joins):
                found.append(value.name.value)
        return found


def subgraph_sdls(
    document: DocumentNode, links: Links, graphs: dict[str, str], query_type: str
) -> dict[str, str]:
    """Per subgraph name, the SDL of the schema it serves (`graphs`: join enum value -> name)."""
    slicer = _Slicer(document, links, graphs)
    return {name: slicer.sdl(name, query_type) for name in graphs.values()}
