"""Parsing of `key`, `requires` and `provides` field sets into `FieldSet` tuples."""

from __future__ import annotations

from functools import lru_cache

from graphql import GraphQLSyntaxError, parse, print_ast
from graphql.language import (
    FieldNode,
    InlineFragmentNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

from router.supergraph.model import FieldSet, FieldSetItem, SupergraphError


def _convert(selection_set: SelectionSetNode | None) -> FieldSet:
    if selection_set is None:
        return ()
    items: list[FieldSetItem] = []
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.alias is not None:
                raise SupergraphError("Field sets may not use aliases")
            arguments = ", ".join(print_ast(a) for a in selection.arguments or ())
            items.append(
                FieldSetItem(
                    selection.name.value,
                    _convert(selection.selection_set),
                    arguments=f"({arguments})" if arguments else "",
                )
            )
        elif isinstance(selection, InlineFragmentNode):
            condition = selection.type_condition.name.value if selection.type_condition else None
            if condition is None:
                items.extend(_convert(selection.selection_set))
            else:
                items.append(FieldSetItem("", _convert(selection.selection_set), condition))
        else:
            raise SupergraphError("Field sets may not use named fragments")
    return tuple(items)


@lru_cache(maxsize=4096)
def parse_field_set(text: str) -> FieldSet:
    """`"id organization { id }"` as a FieldSet."""
    try:
        document = parse("{" + text + "}", no_location=True)
    except GraphQLSyntaxError as exc:
        raise SupergraphError(f"Invalid field set {text!r}: {exc.message}") from exc
    operation = document.definitions[0]
    assert isinstance(operation, OperationDefinitionNode)
    return _convert(operation.selection_set)
