"""The supergraph being composed: mutable merged types, fields and their per-subgraph joins."""

from __future__ import annotations

from dataclasses import dataclass, field

from graphql import parse_type
from graphql.language import ListTypeNode, NamedTypeNode, NonNullTypeNode, TypeNode, print_ast


@dataclass
class FieldJoin:
    external: bool = False
    requires: str | None = None
    provides: str | None = None
    override: str | None = None
    override_label: str | None = None
    type: str | None = None  # the field's type in this subgraph
    shareable: bool = False
    # `@fromContext` arguments: (argument, type, supergraph context name, selection).
    context_arguments: list[tuple[str, str, str, str]] = field(default_factory=list)


@dataclass
class MergedArgument:
    name: str
    type: str
    default: str | None
    description: str | None
    inaccessible: bool = False
    tags: list[str] = field(default_factory=list)
    subgraphs: set[str] = field(default_factory=set)


@dataclass
class MergedField:
    name: str
    type: str
    description: str | None = None
    deprecated: str | None = None  # the printed @deprecated directive
    default: str | None = None  # input fields
    inaccessible: bool = False
    tags: list[str] = field(default_factory=list)
    arguments: dict[str, MergedArgument] = field(default_factory=dict)
    sources: dict[str, FieldJoin] = field(default_factory=dict)


@dataclass
class TypeJoin:
    keys: list[tuple[str, bool]] = field(default_factory=list)  # (fields, resolvable)
    extension: bool = False
    interface_object: bool = False


@dataclass
class MergedEnumValue:
    name: str
    description: str | None = None
    deprecated: str | None = None
    inaccessible: bool = False
    tags: list[str] = field(default_factory=list)
    subgraphs: list[str] = field(default_factory=list)


@dataclass
class MergedType:
    name: str
    kind: str  # object | interface | union | enum | input | scalar
    description: str | None = None
    inaccessible: bool = False
    tags: list[str] = field(default_factory=list)
    specified_by: str | None = None
    contexts: list[str] = field(default_factory=list)  # supergraph names of `@context`s
    joins: dict[str, TypeJoin] = field(default_factory=dict)
    fields: dict[str, MergedField] = field(default_factory=dict)
    implements: dict[str, list[str]] = field(default_factory=dict)
    members: dict[str, list[str]] = field(default_factory=dict)
    values: dict[str, MergedEnumValue] = field(default_factory=dict)


def _merge_nodes(a: TypeNode, b: TypeNode, output: bool) -> TypeNode | None:
    a_required, b_required = isinstance(a, NonNullTypeNode), isinstance(b, NonNullTypeNode)
    inner_a = a.type if isinstance(a, NonNullTypeNode) else a
    inner_b = b.type if isinstance(b, NonNullTypeNode) else b
    merged: TypeNode | None
    if isinstance(inner_a, ListTypeNode) and isinstance(inner_b, ListTypeNode):
        item = _merge_nodes(inner_a.type, inner_b.type, output)
        merged = ListTypeNode(type=item) if item is not None else None
    elif isinstance(inner_a, NamedTypeNode) and isinstance(inner_b, NamedTypeNode):
        merged = inner_a if inner_a.name.value == inner_b.name.value else None
    else:
        merged = None
    if merged is None:
        return None
    # Outputs take the weaker (nullable) promise, inputs the stronger (required) demand.
    required = (a_required and b_required) if output else (a_required or b_required)
    return NonNullTypeNode(type=merged) if required else merged


def merge_type_refs(a: str, b: str, *, output: bool) -> str | None:
    """The supergraph type of a field typed `a` in one subgraph and `b` in another, or None."""
    if a == b:
        return a
    merged = _merge_nodes(parse_type(a), parse_type(b), output)
    return print_ast(merged) if merged is not None else None


def named_type(type_ref: str) -> str:
    return type_ref.replace("[", "").replace("]", "").replace("!", "").strip()
