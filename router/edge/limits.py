"""Operation limits: depth, aliases, root fields, tokens, directives and cost of a parsed
document.

Measured once per document (the result is cached with its plan), so the hot path never walks
a document twice. Cost: every field costs 1, and the fields under a field with a `first` or
`last` argument count that many times (20 when the size is a variable).

Introspection (`__schema`, `__type`) is not measured here, as graphql-armor's max-depth does by
default (`ignoreIntrospection`): the standard introspection query of GraphiQL and codegen is 15
levels deep through `ofType`. What makes introspection expensive, `fields { type { fields ...`
cycles, is refused by validation (graphql-js's MaxIntrospectionDepthRule, also in graphql-core),
and its size is bounded by the token limit.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from graphql.language import (
    DocumentNode,
    FieldNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    InlineFragmentNode,
    IntValueNode,
    OperationDefinitionNode,
    SelectionSetNode,
)

# The page size assumed for a list argument given by a variable (the contract's default).
_ASSUMED_PAGE = 20
_PAGE_ARGUMENTS = frozenset({"first", "last"})
_INTROSPECTION = frozenset({"__schema", "__type"})


@dataclass(frozen=True, slots=True)
class OperationLimits:
    max_depth: int = 12
    max_aliases: int = 30
    max_root_fields: int = 20
    max_tokens: int = 5_000
    max_cost: int = 10_000
    max_directives: int = 50


@dataclass(frozen=True, slots=True)
class LimitExceeded:
    """One limit an operation goes over: its name (`depth`, `aliases`, ...) and the values."""

    limit: str
    value: int
    maximum: int
    setting: str

    def error(self) -> dict[str, Any]:
        return {
            "message": (
                f"Operation {self.limit} {self.value} is over the limit of {self.maximum}"
                f" ({self.setting})"
            ),
            "extensions": {
                "code": "OPERATION_LIMIT_EXCEEDED",
                "limit": self.limit,
                "value": self.value,
                "maximum": self.maximum,
            },
        }


# GraphQL's lexical tokens, for counting only: the parser's own lexer costs ~20 µs a token in
# Python, so a document at the token limit would take 100 ms to refuse. Ignored: whitespace,
# commas, the BOM and comments (which the parser's limit does not count either).
_TOKENS = re.compile(
    r"[\s,\ufeff]+|#[^\n\r]*"  # ignored: whitespace, commas, BOM, comments
    r'|("{3}(?:\\"{3}|[^"]|"(?!""))*"{3}'  # block string
    r'|"(?:\\.|[^"\\\n\r])*"'  # string
    r"|\.\.\.|-?\d[\w.+-]*|[_A-Za-z][_0-9A-Za-z]*|.)",  # spread, number, name, punctuator
    re.DOTALL,
)


def too_many_tokens(document: str, limits: OperationLimits) -> bool:
    """Whether `document` has more tokens than the limit, counted by a regular expression
    that stops at the limit: a few milliseconds for any document size. It never counts fewer
    tokens than the parser for a valid document, so a valid document under the limit passes;
    for an invalid one it may refuse by the limit what the parser would call a syntax error."""
    if len(document) <= limits.max_tokens:
        return False  # every token is at least one character
    count = 0
    for match in _TOKENS.finditer(document):
        if match.lastindex is None:
            continue  # whitespace, commas, comments
        count += 1
        if count > limits.max_tokens:
            return True
    return False


def tokens_over(limits: OperationLimits) -> LimitExceeded:
    """The error of a document whose parse stopped at the token limit."""
    return LimitExceeded("tokens", limits.max_tokens + 1, limits.max_tokens, "ROUTER_MAX_TOKENS")


def directives_over(document: DocumentNode, limits: OperationLimits) -> LimitExceeded | None:
    """The directive limit, counted over the whole document (every definition), so that a
    document repeating a directive is refused once rather than validated occurrence by
    occurrence (graphql-armor's maxDirectives)."""
    count = 0
    for definition in document.definitions:
        count += _directives_in(definition)
        if count > limits.max_directives:
            return LimitExceeded(
                "directives", count, limits.max_directives, "ROUTER_MAX_DIRECTIVES"
            )
    return None


def _directives_in(node: Any) -> int:
    count = 0
    stack = [node]
    while stack:
        item = stack.pop()
        count += len(getattr(item, "directives", None) or ())
        selection_set = getattr(item, "selection_set", None)
        if selection_set is not None:
            stack.extend(selection_set.selections)
    return count


@dataclass(slots=True)
class _Measure:
    fragments: dict[str, FragmentDefinitionNode]
    aliases: int = 0
    depth: int = 0
    cost: int = 0


def check_limits(
    document: DocumentNode, operation: OperationDefinitionNode, limits: OperationLimits
) -> LimitExceeded | None:
    """The first limit the operation exceeds, or None."""
    fragments = {
        d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
    }
    measure = _Measure(fragments)
    roots = _walk(operation.selection_set, measure, depth=1, multiplier=1, visiting=frozenset())
    found = (
        ("depth", measure.depth, limits.max_depth, "ROUTER_MAX_DEPTH"),
        ("aliases", measure.aliases, limits.max_aliases, "ROUTER_MAX_ALIASES"),
        ("root fields", roots, limits.max_root_fields, "ROUTER_MAX_ROOT_FIELDS"),
        ("cost", measure.cost, limits.max_cost, "ROUTER_MAX_COST"),
    )
    for name, value, maximum, setting in found:
        if value > maximum:
            return LimitExceeded(name, value, maximum, setting)
    return None


def _walk(
    selection_set: SelectionSetNode,
    measure: _Measure,
    *,
    depth: int,
    multiplier: int,
    visiting: frozenset[str],
) -> int:
    """Fields directly in this selection set (through fragments); updates `measure`."""
    fields = 0
    for selection in selection_set.selections:
        if isinstance(selection, FieldNode):
            if selection.name.value in _INTROSPECTION:
                continue  # measured by validation's introspection depth rule (module docstring)
            fields += 1
            if selection.alias is not None:
                measure.aliases += 1
            measure.cost += multiplier
            measure.depth = max(measure.depth, depth)
            if selection.selection_set is not None:
                _walk(
                    selection.selection_set,
                    measure,
                    depth=depth + 1,
                    multiplier=min(multiplier * _page_size(selection), 10**9),
                    visiting=visiting,
                )
        elif isinstance(selection, InlineFragmentNode):
            fields += _walk(
                selection.selection_set,
                measure,
                depth=depth,
                multiplier=multiplier,
                visiting=visiting,
            )
        elif isinstance(selection, FragmentSpreadNode):
            name = selection.name.value
            fragment = measure.fragments.get(name)
            # A fragment cycle fails validation later; here it must only not loop.
            if fragment is not None and name not in visiting:
                fields += _walk(
                    fragment.selection_set,
                    measure,
                    depth=depth,
                    multiplier=multiplier,
                    visiting=visiting | {name},
                )
    return fields


def _page_size(field: FieldNode) -> int:
    for argument in field.arguments or ():
        if argument.name.value in _PAGE_ARGUMENTS:
            value = argument.value
            if isinstance(value, IntValueNode):
                return max(int(value.value), 1)
            return _ASSUMED_PAGE
    return 1
