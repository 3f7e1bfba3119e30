"""A subgraph SDL read for composition: its types (definitions and extensions merged) and the
local names of the federation directives it uses (Federation 2 `@link` imports, or Federation 1)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from graphql import GraphQLSyntaxError, parse
from graphql.language import (
    ConstDirectiveNode,
    DirectiveDefinitionNode,
    DocumentNode,
    ListValueNode,
    ObjectValueNode,
    OperationType,
    SchemaDefinitionNode,
    SchemaExtensionNode,
    StringValueNode,
    TypeDefinitionNode,
    TypeExtensionNode,
)

_FEDERATION_URL = re.compile(r"^https?://specs\.apollo\.dev/federation/v(\d+)\.(\d+)/?$")
_FEDERATION_ELEMENTS = (
    "key",
    "external",
    "requires",
    "provides",
    "shareable",
    "override",
    "inaccessible",
    "tag",
    "interfaceObject",
    "extends",
    "composeDirective",
    "authenticated",
    "requiresScopes",
    "policy",
    "context",
    "fromContext",
    "cost",
    "listSize",
)
# Types a subgraph carries for the federation protocol itself; never part of the supergraph.
PROTOCOL_TYPES = {
    "_Service",
    "_Any",
    "_Entity",
    "_FieldSet",
    "FieldSet",
    "link__Import",
    "link__Purpose",
    "federation__FieldSet",
    "federation__Scope",
    "federation__Policy",
    "federation__ContextFieldValue",
}


@dataclass
class SubgraphDefinition:
    """One subgraph to compose: its name, URL and SDL (as served by `_service { sdl }`)."""

    name: str
    url: str
    sdl: str


@dataclass
class SubgraphSchema:
    name: str
    url: str
    federation_2: bool
    directive_names: dict[str, str]  # federation element -> local directive name
    types: dict[str, list[Any]] = field(default_factory=dict)  # name -> definition/extension nodes
    roots: dict[str, str] = field(default_factory=dict)  # operation -> local root type name

    def directive(self, node: Any, element: str) -> list[ConstDirectiveNode]:
        name = self.directive_names.get(element)
        return [d for d in getattr(node, "directives", None) or () if d.name.value == name]

    def has(self, node: Any, element: str) -> bool:
        return bool(self.directive(node, element))


class SubgraphSyntaxError(Exception):
    pass


def _string_list(value: Any) -> list[Any]:
    return list(value.values) if isinstance(value, ListValueNode) else []


def _link_names(document: DocumentNode) -> tuple[bool, dict[str, str]]:
    for definition in document.definitions:
        if not isinstance(definition, SchemaDefinitionNode | SchemaExtensionNode):
            continue
        for directive in definition.directives or ():
            if directive.name.value != "link":
                continue
            args = {a.name.value: a.value for a in directive.arguments or ()}
            url = args.get("url")
            if not isinstance(url, StringValueNode) or not _FEDERATION_URL.match(url.value):
                continue
            alias = args.get("as")
            prefix = alias.value if isinstance(alias, StringValueNode) else "federation"
            names = {element: f"{prefix}__{element}" for element in _FEDERATION_ELEMENTS}
            for item in _string_list(args.get("import")):
                if isinstance(item, StringValueNode):
                    element = item.value.lstrip("@")
                    names[element] = element
                elif isinstance(item, ObjectValueNode):
                    fields = {f.name.value: f.value for f in item.fields}
                    name = fields.get("name")
                    renamed = fields.get("as", name)
                    if isinstance(name, StringValueNode) and isinstance(renamed, StringValueNode):
                        names[name.value.lstrip("@")] = renamed.value.lstrip("@")
            return True, names
    return False, {element: element for element in _FEDERATION_ELEMENTS}


def read_subgraph(definition: SubgraphDefinition) -> SubgraphSchema:
    try:
        document = parse(definition.sdl, no_location=True)
    except GraphQLSyntaxError as exc:
        raise SubgraphSyntaxError(f"[{definition.name}] SDL syntax error: {exc.message}") from exc
    federation_2, names = _link_names(document)
    schema = SubgraphSchema(definition.name, definition.url, federation_2, names)
    for node in document.definitions:
        if isinstance(node, SchemaDefinitionNode | SchemaExtensionNode):
            for operation in node.operation_types or ():
                schema.roots[operation.operation.value] = operation.type.name.value
        elif isinstance(node, TypeDefinitionNode | TypeExtensionNode):
            if node.name.value not in PROTOCOL_TYPES:
                schema.types.setdefault(node.name.value, []).append(node)
        elif isinstance(node, DirectiveDefinitionNode):
            continue
    for kind in OperationType:
        default = kind.value.capitalize()
        if kind.value not in schema.roots and default in schema.types:
            schema.roots[kind.value] = default
    return schema
