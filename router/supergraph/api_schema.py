"""The API schema: what clients see of a supergraph (no join/link machinery, no @inaccessible)."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from graphql import GraphQLSchema, build_ast_schema, print_schema
from graphql.language import (
    DirectiveDefinitionNode,
    DocumentNode,
    EnumTypeDefinitionNode,
    FieldDefinitionNode,
    InputObjectTypeDefinitionNode,
    InterfaceTypeDefinitionNode,
    ObjectTypeDefinitionNode,
    SchemaDefinitionNode,
    TypeDefinitionNode,
    UnionTypeDefinitionNode,
)

from router.supergraph.links import Links

# Federation types a hand-written supergraph may still carry; clients never see them.
_FEDERATION_LEFTOVERS = {"_Service", "_Entity", "_Any", "_FieldSet", "FieldSet"}


def _has(node: Any, directive: str | None) -> bool:
    return bool(directive) and any(d.name.value == directive for d in node.directives or ())


class _Cleaner:
    def __init__(self, links: Links) -> None:
        self.links = links
        self.inaccessible = links.directive("inaccessible", "inaccessible")

    def directives(self, node: Any) -> tuple[Any, ...]:
        return tuple(
            d for d in node.directives or () if not self.links.is_spec_element(d.name.value)
        )

    def fields(self, fields: Any) -> tuple[Any, ...]:
        kept = []
        for field in fields or ():
            if _has(field, self.inaccessible):
                continue
            changes: dict[str, Any] = {"directives": self.directives(field)}
            if isinstance(field, FieldDefinitionNode):
                if field.name.value in {"_entities", "_service"}:
                    continue
                changes["arguments"] = tuple(
                    replace(a, directives=self.directives(a))
                    for a in field.arguments or ()
                    if not _has(a, self.inaccessible)
                )
            kept.append(replace(field, **changes))
        return tuple(kept)


def build_api_sdl(document: DocumentNode, links: Links) -> str:
    """Print the API schema of a parsed supergraph document."""
    return print_schema(build_api_schema(document, links))


def build_api_schema(document: DocumentNode, links: Links) -> GraphQLSchema:
    clean = _Cleaner(links)
    removed = {
        d.name.value
        for d in document.definitions
        if isinstance(d, TypeDefinitionNode)
        and (
            _has(d, clean.inaccessible)
            or links.is_spec_element(d.name.value)
            or d.name.value in _FEDERATION_LEFTOVERS
        )
    }
    definitions: list[Any] = []
    for definition in document.definitions:
        if isinstance(definition, DirectiveDefinitionNode):
            if not links.is_spec_element(definition.name.value):
                definitions.append(definition)
            continue
        if isinstance(definition, SchemaDefinitionNode):
            definitions.append(replace(definition, directives=()))
            continue
        if not isinstance(definition, TypeDefinitionNode) or definition.name.value in removed:
            continue
        node: Any = replace(definition, directives=clean.directives(definition))
        if isinstance(node, ObjectTypeDefinitionNode | InterfaceTypeDefinitionNode):
            node = replace(
                node,
                fields=clean.fields(node.fields),
                interfaces=tuple(i for i in node.interfaces or () if i.name.value not in removed),
            )
            if not node.fields:
                continue
        elif isinstance(node, InputObjectTypeDefinitionNode):
            node = replace(node, fields=clean.fields(node.fields))
        elif isinstance(node, UnionTypeDefinitionNode):
            node = replace(
                node, types=tuple(t for t in node.types or () if t.name.value not in removed)
            )
        elif isinstance(node, EnumTypeDefinitionNode):
            node = replace(
                node,
                values=tuple(
                    replace(v, directives=clean.directives(v))
                    for v in node.values or ()
                    if not _has(v, clean.inaccessible)
                ),
            )
        definitions.append(node)
    return build_ast_schema(
        replace(document, definitions=tuple(definitions)), assume_valid_sdl=True
    )
