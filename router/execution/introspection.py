"""Introspection (`__schema`, `__type`) answered by the router itself from the API schema."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from graphql import GraphQLSchema, execute_sync
from graphql.language import DocumentNode, FieldNode, OperationDefinitionNode

_META = {"__schema", "__type"}


def introspection_document(
    document: DocumentNode, operation: OperationDefinitionNode
) -> DocumentNode | None:
    """The operation reduced to its root introspection fields, or None when it has none."""
    fields = tuple(
        s
        for s in operation.selection_set.selections
        if isinstance(s, FieldNode) and s.name.value in _META
    )
    if not fields:
        return None
    reduced = replace(operation, selection_set=replace(operation.selection_set, selections=fields))
    others = tuple(d for d in document.definitions if not isinstance(d, OperationDefinitionNode))
    return replace(document, definitions=(reduced, *others))


def introspect(
    schema: GraphQLSchema, document: DocumentNode, variables: dict[str, Any]
) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    result = execute_sync(schema, document, variable_values=variables)
    errors = [error.formatted for error in result.errors or ()]
    return dict(result.data or {}), [dict(e) for e in errors]
