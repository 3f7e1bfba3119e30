"""Edge checks of every string a subgraph receives, before any resolver (and so any SQL) runs:
no NUL characters or lone surrogates, at most the length its subgraph allows, and IDs in their
format. Each failure is a BAD_USER_INPUT naming the field.

A subgraph lists an `InputRule` for every String and ID argument and input field of its schema
(by coordinate, `Query.user(id:)` or `RegisterInput.username`); `missing_rules` finds the ones
it forgot. The checks run as a validation rule with the request's variables, so literals and
variables, queries, mutations and subscriptions are all held to the same rules.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from typing import Any, ClassVar

from graphql import (
    DirectiveNode,
    GraphQLError,
    GraphQLInputObjectType,
    GraphQLInputType,
    GraphQLList,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    ListValueNode,
    Node,
    ObjectValueNode,
    ValidationContext,
    ValidationRule,
    ValueNode,
    VariableNode,
    get_named_type,
)
from graphql.language import ArgumentNode, IntValueNode, StringValueNode
from strawberry.extensions import SchemaExtension

from core.db.territories import MAX_TERRITORY_CODE_LENGTH, TERRITORY_CODE_PATTERN
from core.errors import ErrorCode

_STRING_SCALARS = frozenset({"String", "ID"})
# Federation's `_Any` (entity representations): no length rule, but no NUL or lone surrogate.
_ANY_SCALARS = frozenset({"_Any"})
_UUID = re.compile(r"^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}$")
_TERRITORY_CODE = re.compile(TERRITORY_CODE_PATTERN)


class IdFormat(Enum):
    UUID = "a UUID"
    TERRITORY_CODE = "a territory code"

    def matches(self, value: str) -> bool:
        if self is IdFormat.UUID:
            return _UUID.fullmatch(value) is not None
        return (
            len(value) <= MAX_TERRITORY_CODE_LENGTH and _TERRITORY_CODE.fullmatch(value) is not None
        )


@dataclass(frozen=True, slots=True)
class InputRule:
    """The longest value allowed (characters), and for IDs the format they must have."""

    max_length: int
    id_format: IdFormat | None = None


UUID_ID = InputRule(36, IdFormat.UUID)
TERRITORY_CODE = InputRule(MAX_TERRITORY_CODE_LENGTH, IdFormat.TERRITORY_CODE)


def string_inputs(schema: GraphQLSchema) -> Iterator[str]:
    """The coordinates of every String and ID argument and input field of `schema`."""
    for type_ in schema.type_map.values():
        if type_.name.startswith("__"):
            continue
        if isinstance(type_, GraphQLObjectType):
            for field_name, field in type_.fields.items():
                for arg_name, arg in field.args.items():
                    if get_named_type(arg.type).name in _STRING_SCALARS:
                        yield f"{type_.name}.{field_name}({arg_name}:)"
        elif isinstance(type_, GraphQLInputObjectType):
            for field_name, input_field in type_.fields.items():
                if get_named_type(input_field.type).name in _STRING_SCALARS:
                    yield f"{type_.name}.{field_name}"


def missing_rules(schema: GraphQLSchema, rules: Mapping[str, InputRule]) -> list[str]:
    """The String and ID inputs of `schema` without a rule (every one needs one)."""
    return sorted(set(string_inputs(schema)) - set(rules))


def string_problem(value: str, rule: InputRule | None) -> str | None:
    """Why `value` is refused, or None. `rule` None: only the character checks."""
    if "\x00" in value:
        return "contains a NUL character"
    if not value.isascii():
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            return "contains an unpaired surrogate (not valid Unicode)"
    if rule is None:
        return None
    if len(value) > rule.max_length:
        return f"is longer than {rule.max_length} characters"
    if rule.id_format is not None and not rule.id_format.matches(value):
        return f"is not {rule.id_format.value}"
    return None


class _Checker:
    """Walks one argument's value (literal or from variables) with its input type."""

    def __init__(
        self,
        rules: Mapping[str, InputRule],
        variables: Mapping[str, Any],
        context: ValidationContext,
    ) -> None:
        self.rules = rules
        self.variables = variables
        self.context = context

    def node(self, node: ValueNode, type_: GraphQLInputType, coordinate: str, field: str) -> None:
        if isinstance(node, VariableNode):
            name = node.name.value
            if name in self.variables:
                self.value(self.variables[name], type_, coordinate, field, node)
            return
        if isinstance(type_, GraphQLNonNull):
            self.node(node, type_.of_type, coordinate, field)
        elif isinstance(type_, GraphQLList):
            items = node.values if isinstance(node, ListValueNode) else (node,)
            for item in items:
                self.node(item, type_.of_type, coordinate, field)
        elif isinstance(type_, GraphQLInputObjectType):
            if isinstance(node, ObjectValueNode):
                for object_field in node.fields:
                    name = object_field.name.value
                    found = type_.fields.get(name)
                    if found is not None:
                        self.node(object_field.value, found.type, f"{type_.name}.{name}", name)
        elif isinstance(type_, GraphQLScalarType):
            if type_.name in _STRING_SCALARS and isinstance(node, StringValueNode | IntValueNode):
                self.string(node.value, coordinate, field, node)
            elif type_.name in _ANY_SCALARS and isinstance(node, StringValueNode):
                self.string(node.value, None, field, node)

    def value(
        self, value: Any, type_: GraphQLInputType, coordinate: str, field: str, node: Node
    ) -> None:
        if isinstance(type_, GraphQLNonNull):
            self.value(value, type_.of_type, coordinate, field, node)
        elif isinstance(type_, GraphQLList):
            for item in value if isinstance(value, list) else (value,):
                self.value(item, type_.of_type, coordinate, field, node)
        elif isinstance(type_, GraphQLInputObjectType):
            if isinstance(value, Mapping):
                for name, item in value.items():
                    found = type_.fields.get(name)
                    if found is not None:
                        self.value(item, found.type, f"{type_.name}.{name}", name, node)
        elif isinstance(type_, GraphQLScalarType):
            if type_.name in _STRING_SCALARS and isinstance(value, str):
                self.string(value, coordinate, field, node)
            elif type_.name in _ANY_SCALARS:
                self.any_value(value, field, node)

    def any_value(self, value: Any, field: str, node: Node) -> None:
        if isinstance(value, str):
            self.string(value, None, field, node)
        elif isinstance(value, Mapping):
            for key, item in value.items():
                self.any_value(key, field, node)
                self.any_value(item, field, node)
        elif isinstance(value, list):
            for item in value:
                self.any_value(item, field, node)

    def string(self, value: str, coordinate: str | None, field: str, node: Node) -> None:
        rule = self.rules.get(coordinate) if coordinate is not None else None
        problem = string_problem(value, rule)
        if problem is not None:
            self.context.report_error(
                GraphQLError(
                    f"`{field}` {problem}",
                    node,
                    extensions={"code": ErrorCode.BAD_USER_INPUT.value, "field": field},
                )
            )


class InputChecks(SchemaExtension):
    """Adds the checks to the validation of each operation; subclass with `rules` set (see
    `input_checks`)."""

    rules: ClassVar[Mapping[str, InputRule]] = {}

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        variables = context.variables or {}
        rules = self.rules

        class CheckedInputs(ValidationRule):
            def __init__(self, validation: ValidationContext) -> None:
                super().__init__(validation)
                self.checker = _Checker(rules, variables, validation)

            def enter_argument(self, node: ArgumentNode, *args: Any) -> Any:
                ancestors = args[-1] if args else ()
                if ancestors and isinstance(ancestors[-1], DirectiveNode):
                    return self.SKIP
                argument = self.context.get_argument()
                parent = self.context.get_parent_type()
                field = ancestors[-1] if ancestors else None
                if argument is None or parent is None or field is None:
                    return self.SKIP
                name = node.name.value
                coordinate = f"{parent.name}.{field.name.value}({name}:)"
                self.checker.node(node.value, argument.type, coordinate, name)
                return self.SKIP

        context.validation_rules = (*context.validation_rules, CheckedInputs)
        yield


def input_checks(rules: Mapping[str, InputRule]) -> type[InputChecks]:
    """The schema extension applying `rules` (one per String and ID input of the schema)."""
    return type("SubgraphInputChecks", (InputChecks,), {"rules": dict(rules)})
