"""Edge checks of every string a subgraph receives, before any resolver (and so any SQL) runs:
no NUL characters or lone surrogates, at most the length its subgraph allows, and IDs in their
format. Each failure is a BAD_USER_INPUT naming the field.

A subgraph lists an `InputRule` for every String and ID argument and input field of its schema
(by coordinate, `Query.user(id:)` or `RegisterInput.username`); `missing_rules` finds the ones
it forgot. The checks run with validation, on the request's variables, so literals and
variables, queries, mutations and subscriptions are all held to the same rules.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass
from enum import Enum
from functools import partial
from typing import Any, ClassVar

from graphql import (
    ASTValidationRule,
    DirectiveNode,
    DocumentNode,
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
    ValidationRule,
    ValueNode,
    VariableNode,
    get_named_type,
    validate,
)
from graphql.language import ArgumentNode, IntValueNode, StringValueNode
from strawberry.extensions import ParserCache, SchemaExtension

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
    """Walks argument values (literal or from variables) with their input types, collecting
    one BAD_USER_INPUT error per refused string."""

    def __init__(self, rules: Mapping[str, InputRule], variables: Mapping[str, Any]) -> None:
        self.rules = rules
        self.variables = variables
        self.errors: list[GraphQLError] = []

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
            self.errors.append(
                GraphQLError(
                    f"`{field}` {problem}",
                    node,
                    extensions={"code": ErrorCode.BAD_USER_INPUT.value, "field": field},
                )
            )


@dataclass(frozen=True, slots=True)
class _ArgumentSite:
    """An argument of the document with its input type: what the checks walk per request."""

    value: ValueNode
    type_: GraphQLInputType
    coordinate: str
    name: str


@dataclass(frozen=True, slots=True)
class _CheckedDocument:
    """What a document's validation found, kept while the document is reused."""

    document: DocumentNode
    rules: tuple[type[ASTValidationRule], ...]
    errors: tuple[GraphQLError, ...]
    arguments: tuple[_ArgumentSite, ...]


def _argument_sites(schema: GraphQLSchema, document: DocumentNode) -> tuple[_ArgumentSite, ...]:
    found: list[_ArgumentSite] = []

    class ArgumentSites(ValidationRule):
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
            found.append(_ArgumentSite(node.value, argument.type, coordinate, name))
            return self.SKIP

    validate(schema, document, [ArgumentSites])
    return tuple(found)


class _ValidatedDocuments:
    """The validation of the documents seen last (at most `size`), by document identity: the
    parser cache hands out the same document object for the same text, so the router's
    repeated documents are validated and scanned for arguments once."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._found: OrderedDict[int, _CheckedDocument] = OrderedDict()

    def get(
        self,
        schema: GraphQLSchema,
        document: DocumentNode,
        rules: tuple[type[ASTValidationRule], ...],
    ) -> _CheckedDocument:
        key = id(document)
        found = self._found.get(key)
        if found is not None and found.document is document and found.rules == rules:
            self._found.move_to_end(key)
            return found
        errors = tuple(validate(schema, document, rules))
        checked = _CheckedDocument(
            document, rules, errors, () if errors else _argument_sites(schema, document)
        )
        self._found[key] = checked
        if len(self._found) > self.size:
            self._found.popitem(last=False)
        return checked


# Documents kept parsed and validated: the router sends the same few documents again and again
# (an `_entities` fetch for every subscription event, say), and validating one costs more than
# executing it. Bounded, so documents a client varies cannot grow the caches.
DOCUMENT_CACHE_SIZE = 512


class InputChecks(SchemaExtension):
    """The validation of each operation, the checks included: the document's own validation
    and argument sites are cached per document; the checks run on every request with its
    variables. Subclass with `rules` set (see `input_checks`)."""

    rules: ClassVar[Mapping[str, InputRule]] = {}
    documents: ClassVar[_ValidatedDocuments]

    def on_validate(self) -> Iterator[None]:
        context = self.execution_context
        document = context.graphql_document
        if document is not None and context.pre_execution_errors is None:
            checked = self.documents.get(
                context.schema._schema, document, tuple(context.validation_rules)
            )
            errors = list(checked.errors)
            if not errors:
                checker = _Checker(self.rules, context.variables or {})
                for site in checked.arguments:
                    checker.node(site.value, site.type_, site.coordinate, site.name)
                errors = checker.errors
            # Set, so strawberry does not validate again.
            context.pre_execution_errors = errors
        yield


def input_checks(rules: Mapping[str, InputRule]) -> type[InputChecks]:
    """The schema extension validating operations and applying `rules` (one per String and ID
    input of the schema)."""
    return type(
        "SubgraphInputChecks",
        (InputChecks,),
        {"rules": dict(rules), "documents": _ValidatedDocuments(DOCUMENT_CACHE_SIZE)},
    )


def subgraph_extensions(
    rules: Mapping[str, InputRule],
) -> list[type[SchemaExtension] | Callable[[], SchemaExtension]]:
    """The schema extensions every subgraph runs: cached parsing, then validation with the
    input checks of `rules` (see `InputChecks`)."""
    return [partial(ParserCache, maxsize=DOCUMENT_CACHE_SIZE), input_checks(rules)]
