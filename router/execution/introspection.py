"""Introspection (`__schema`, `__type`) answered by the router itself from the API schema."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from graphql import GraphQLSchema, execute_sync
from graphql.language import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    NamedTypeNode,
    NameNode,
    OperationDefinitionNode,
    SelectionNode,
    SelectionSetNode,
)

_META = {"__schema", "__type"}


def _introspection_only(
    selection_set: SelectionSetNode, fragments: dict[str, FragmentDefinitionNode]
) -> tuple[SelectionNode, ...]:
    """The root selections that are introspection fields, through fragments too."""
    kept: list[SelectionNode] = []
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value in _META:
                kept.append(selection)
            continue
        if isinstance(selection, InlineFragmentNode):
            inner = _introspection_only(selection.selection_set, fragments)
            if inner:
                kept.append(replace(selection, selection_set=SelectionSetNode(selections=inner)))
            continue
        if isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is None:
                continue
            inner = _introspection_only(fragment.selection_set, fragments)
            if inner:
                kept.append(
                    InlineFragmentNode(
                        type_condition=NamedTypeNode(
                            name=NameNode(value=fragment.type_condition.name.value)
                        ),
                        directives=selection.directives,
                        selection_set=SelectionSetNode(selections=inner),
                    )
                )
    return tuple(kept)


def introspection_document(
    document: DocumentNode, operation: OperationDefinitionNode
) -> DocumentNode | None:
    """The operation reduced to its root introspection fields, or None when it has none."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    selections = _introspection_only(operation.selection_set, fragments)
    if not selections:
        return None
    reduced = replace(operation, selection_set=SelectionSetNode(selections=selections))
    # The fragments stay: introspection queries spread them below the root (`...FullType`).
    return DocumentNode(definitions=(reduced, *fragments.values()))


def introspect(
    schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    result = execute_sync(schema, document, variable_values=variables)
    errors = [error.formatted for error in result.errors or ()]
    return dict(result.data or {}), [dict(e) for e in errors]
