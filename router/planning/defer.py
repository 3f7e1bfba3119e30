"""`@defer`: an operation split into what is answered first and the fragments that follow.

The split is done on the document: fragment spreads are inlined, every deferred fragment is
cut out of the *primary* document and remembered with its response path, and the *complete*
document is the operation without `@defer`. Both are then validated and planned like any
other document (and cached the same way)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    DirectiveNode,
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
    VariableNode,
    print_ast,
)
from graphql.language import BooleanValueNode, StringValueNode, Visitor, visit

from router.planning.operation import OperationError, select_operation

# Deeper nesting of fragments than this is refused by validation long before; a guard only.
_MAX_FRAGMENT_DEPTH = 64


@dataclass(frozen=True, slots=True)
class DeferredFragment:
    """A deferred fragment: its label, the response keys from the root to the objects it
    applies to (lists are walked item by item), and the response keys it selects there."""

    label: str | None
    path: tuple[str, ...]
    keys: frozenset[str]


@dataclass(frozen=True, slots=True)
class DeferSplit:
    operation_name: str | None
    complete: DocumentNode
    primary: DocumentNode
    deferred: tuple[DeferredFragment, ...]

    @property
    def complete_query(self) -> str:
        return print_ast(self.complete)

    @property
    def primary_query(self) -> str:
        return print_ast(self.primary)


def has_defer(query: str) -> bool:
    """Cheap pre-check before any parsing."""
    return "@defer" in query


def defer_switches(variables: Mapping[str, Any] | None) -> tuple[tuple[str, bool], ...]:
    """The boolean variables, which may decide `@defer(if: $var)`: part of a split's identity."""
    return tuple(sorted((k, v) for k, v in (variables or {}).items() if isinstance(v, bool)))


def split_deferred(
    document: DocumentNode, operation_name: str | None, switches: Mapping[str, bool]
) -> DeferSplit | None:
    """The split of a parsed document using `@defer` (None when the operation cannot be
    selected: validation then reports the problem). `@defer(if: $var)` is decided by the
    boolean variables in `switches`."""
    try:
        operation = select_operation(document, operation_name)
    except OperationError:
        return None
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    inlined = _inline(operation.selection_set, fragments, 0)
    deferred: list[DeferredFragment] = []
    primary = _cut(inlined, (), switches, deferred)
    name = operation.name.value if operation.name else None
    complete = _without_defer(inlined)
    return DeferSplit(
        operation_name=name,
        complete=_document(operation, complete),
        primary=_document(operation, primary),
        deferred=tuple(deferred),
    )


def _inline(
    selection_set: SelectionSetNode, fragments: Mapping[str, FragmentDefinitionNode], depth: int
) -> SelectionSetNode:
    """The selection set with every fragment spread replaced by an inline fragment."""
    if depth > _MAX_FRAGMENT_DEPTH:
        raise OperationError("Fragments are nested too deeply")
    selections: list[SelectionNode] = []
    for selection in selection_set.selections:
        if isinstance(selection, FragmentSpreadNode):
            fragment = fragments.get(selection.name.value)
            if fragment is None:
                selections.append(selection)  # validation names the unknown fragment
                continue
            selections.append(
                InlineFragmentNode(
                    type_condition=NamedTypeNode(
                        name=NameNode(value=fragment.type_condition.name.value)
                    ),
                    directives=tuple(selection.directives or ()),
                    selection_set=_inline(fragment.selection_set, fragments, depth + 1),
                )
            )
        elif isinstance(selection, InlineFragmentNode):
            selections.append(
                InlineFragmentNode(
                    type_condition=selection.type_condition,
                    directives=tuple(selection.directives or ()),
                    selection_set=_inline(selection.selection_set, fragments, depth + 1),
                )
            )
        elif isinstance(selection, FieldNode) and selection.selection_set is not None:
            selections.append(
                FieldNode(
                    alias=selection.alias,
                    name=selection.name,
                    arguments=tuple(selection.arguments or ()),
                    directives=tuple(selection.directives or ()),
                    selection_set=_inline(selection.selection_set, fragments, depth + 1),
                )
            )
        else:
            selections.append(selection)
    return SelectionSetNode(selections=tuple(selections))


def _defer_of(fragment: InlineFragmentNode, switches: Mapping[str, bool]) -> DirectiveNode | None:
    """The fragment's `@defer` if it defers now (`if` absent, true, or a true variable)."""
    for directive in fragment.directives or ():
        if directive.name.value != "defer":
            continue
        for argument in directive.arguments or ():
            if argument.name.value != "if":
                continue
            value = argument.value
            if isinstance(value, BooleanValueNode) and not value.value:
                return None
            if isinstance(value, VariableNode) and not switches.get(value.name.value, True):
                return None
        return directive
    return None


def _label(directive: DirectiveNode) -> str | None:
    for argument in directive.arguments or ():
        if argument.name.value == "label" and isinstance(argument.value, StringValueNode):
            return argument.value.value
    return None


def _cut(
    selection_set: SelectionSetNode,
    path: tuple[str, ...],
    switches: Mapping[str, bool],
    deferred: list[DeferredFragment],
) -> SelectionSetNode:
    """The primary selection set; deferred fragments are appended to `deferred`. A fragment
    that is all its parent selects is not deferred (the parent would select nothing)."""
    kept: list[SelectionNode] = []
    cut: list[tuple[InlineFragmentNode, DirectiveNode]] = []
    for selection in selection_set.selections:
        if isinstance(selection, InlineFragmentNode):
            directive = _defer_of(selection, switches)
            if directive is not None:
                cut.append((selection, directive))
                continue
            kept.append(
                InlineFragmentNode(
                    type_condition=selection.type_condition,
                    directives=_other_directives(selection.directives),
                    selection_set=_cut(selection.selection_set, path, switches, deferred),
                )
            )
        elif isinstance(selection, FieldNode) and selection.selection_set is not None:
            key = (selection.alias or selection.name).value
            kept.append(
                FieldNode(
                    alias=selection.alias,
                    name=selection.name,
                    arguments=selection.arguments,
                    directives=selection.directives,
                    selection_set=_cut(selection.selection_set, (*path, key), switches, deferred),
                )
            )
        else:
            kept.append(selection)
    if not kept:
        # Nothing would be left here: answer these fragments with the primary payload.
        return _without_defer(selection_set)
    for fragment, directive in cut:
        deferred.append(
            DeferredFragment(_label(directive), path, frozenset(_response_keys(fragment)))
        )
    return SelectionSetNode(selections=tuple(kept))


def _response_keys(fragment: InlineFragmentNode) -> set[str]:
    keys: set[str] = set()
    for selection in fragment.selection_set.selections:
        if isinstance(selection, FieldNode):
            keys.add((selection.alias or selection.name).value)
        elif isinstance(selection, InlineFragmentNode):
            keys |= _response_keys(selection)
    return keys


def _other_directives(directives: Any) -> tuple[DirectiveNode, ...]:
    return tuple(d for d in directives or () if d.name.value != "defer")


def _without_defer(selection_set: SelectionSetNode) -> SelectionSetNode:
    class _DropDefer(Visitor):
        def enter_directive(self, node: DirectiveNode, *_: Any) -> Any:
            return Visitor.REMOVE if node.name.value == "defer" else None

    result = visit(selection_set, _DropDefer())
    assert isinstance(result, SelectionSetNode)
    return result


def _document(operation: OperationDefinitionNode, selection_set: SelectionSetNode) -> DocumentNode:
    """One operation document; variables that only `@defer` or the cut fragments used are
    dropped (validation refuses unused variables)."""
    used: set[str] = set()

    class _Uses(Visitor):
        def enter_variable(self, node: VariableNode, *_: Any) -> None:
            used.add(node.name.value)

    visit(selection_set, _Uses())
    for directive in operation.directives or ():
        visit(directive, _Uses())
    definitions = tuple(
        d for d in operation.variable_definitions or () if d.variable.name.value in used
    )
    return DocumentNode(
        definitions=(
            OperationDefinitionNode(
                operation=operation.operation,
                name=operation.name,
                variable_definitions=definitions,
                directives=tuple(operation.directives or ()),
                selection_set=selection_set,
            ),
        )
    )
