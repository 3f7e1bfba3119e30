"""A client operation normalized for planning: fragments inlined, @skip/@include made explicit.

Named fragments become inline fragments; selections statically excluded by a literal
`@skip(if: true)` / `@include(if: false)` disappear; variable conditions are kept.
"""

from __future__ import annotations

from dataclasses import dataclass

from graphql.language import (
    BooleanValueNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    Node,
    OperationDefinitionNode,
    SelectionSetNode,
    VariableDefinitionNode,
    VariableNode,
    Visitor,
    print_ast,
    visit,
)


class OperationError(Exception):
    """The request does not name a single executable operation."""


# (variable name, value for which the selection is included)
ConditionTerm = tuple[str, bool]


@dataclass(frozen=True, slots=True)
class Field:
    response_key: str
    name: str
    arguments: str  # printed, e.g. `(first: 5)`, or ""
    directives: str  # printed directives forwarded to subgraphs, or ""
    conditions: tuple[ConditionTerm, ...]
    variables: frozenset[str]
    selections: tuple[Selection, ...]


@dataclass(frozen=True, slots=True)
class Fragment:
    type_condition: str | None
    directives: str
    conditions: tuple[ConditionTerm, ...]
    variables: frozenset[str]
    selections: tuple[Selection, ...]


Selection = Field | Fragment


@dataclass(frozen=True, slots=True)
class NormalizedOperation:
    kind: str  # query | mutation | subscription
    name: str | None
    variable_definitions: dict[str, str]  # name -> printed definition (`$id: ID! = 1`)
    selections: tuple[Selection, ...]


class _VariableCollector(Visitor):
    def __init__(self) -> None:
        super().__init__()
        self.names: set[str] = set()

    def enter_variable(self, node: VariableNode, *_: object) -> None:
        self.names.add(node.name.value)


def _variables(nodes: tuple[Node, ...]) -> frozenset[str]:
    collector = _VariableCollector()
    for node in nodes:
        visit(node, collector)
    return frozenset(collector.names)


def _conditions(directives: tuple[DirectiveNode, ...]) -> tuple[tuple[ConditionTerm, ...], bool]:
    """Variable conditions of @skip/@include, and whether the selection is statically excluded."""
    terms: list[ConditionTerm] = []
    for directive in directives:
        name = directive.name.value
        if name not in {"skip", "include"}:
            continue
        value = directive.arguments[0].value if directive.arguments else None
        wanted = name == "include"
        if isinstance(value, BooleanValueNode):
            if value.value != wanted:
                return (), True
        elif isinstance(value, VariableNode):
            terms.append((value.name.value, wanted))
    return tuple(terms), False


def _printed_directives(directives: tuple[DirectiveNode, ...]) -> str:
    kept = [
        d
        for d in directives
        if d.name.value not in {"skip", "include"}
        or not (d.arguments and isinstance(d.arguments[0].value, BooleanValueNode))
    ]
    return " ".join(print_ast(d) for d in kept)


class _Normalizer:
    def __init__(self, fragments: dict[str, FragmentDefinitionNode]) -> None:
        self.fragments = fragments

    def selections(self, selection_set: SelectionSetNode | None) -> tuple[Selection, ...]:
        if selection_set is None:
            return ()
        found: list[Selection] = []
        for node in selection_set.selections:
            directives = tuple(node.directives or ())
            conditions, excluded = _conditions(directives)
            if excluded:
                continue
            printed = _printed_directives(directives)
            if isinstance(node, FieldNode):
                arguments = tuple(node.arguments or ())
                found.append(
                    Field(
                        response_key=node.alias.value if node.alias else node.name.value,
                        name=node.name.value,
                        arguments=(
                            "(" + ", ".join(print_ast(a) for a in arguments) + ")"
                            if arguments
                            else ""
                        ),
                        directives=printed,
                        conditions=conditions,
                        variables=_variables(arguments + directives),
                        selections=self.selections(node.selection_set),
                    )
                )
            elif isinstance(node, InlineFragmentNode):
                found.append(
                    Fragment(
                        type_condition=node.type_condition.name.value
                        if node.type_condition
                        else None,
                        directives=printed,
                        conditions=conditions,
                        variables=_variables(directives),
                        selections=self.selections(node.selection_set),
                    )
                )
            elif isinstance(node, FragmentSpreadNode):
                definition = self.fragments[node.name.value]
                found.append(
                    Fragment(
                        type_condition=definition.type_condition.name.value,
                        directives=printed,
                        conditions=conditions,
                        variables=_variables(directives),
                        selections=self.selections(definition.selection_set),
                    )
                )
        return tuple(found)


def select_operation(document: DocumentNode, operation_name: str | None) -> OperationDefinitionNode:
    operations = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
    if operation_name:
        for operation in operations:
            if operation.name and operation.name.value == operation_name:
                return operation
        raise OperationError(f"Unknown operation named '{operation_name}'.")
    if len(operations) != 1:
        raise OperationError(
            "Must provide operation name if query contains multiple operations."
            if operations
            else "The document contains no operation."
        )
    return operations[0]


def normalize(document: DocumentNode, operation_name: str | None) -> NormalizedOperation:
    """The named (or only) operation of a validated document, normalized."""
    operation = select_operation(document, operation_name)
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    definitions: dict[str, str] = {}
    for definition in operation.variable_definitions or ():
        definitions[definition.variable.name.value] = _print_variable(definition)
    return NormalizedOperation(
        kind=operation.operation.value,
        name=operation.name.value if operation.name else None,
        variable_definitions=definitions,
        selections=_Normalizer(fragments).selections(operation.selection_set),
    )


def _print_variable(definition: VariableDefinitionNode) -> str:
    text = f"${definition.variable.name.value}: {print_ast(definition.type)}"
    if definition.default_value is not None:
        text += f" = {print_ast(definition.default_value)}"
    return text
