"""The supergraph as plain frozen data: subgraphs, and per type and field where it can be resolved.

Built once by `parse_supergraph`; the planner reads it, nothing mutates it.
"""

from __future__ import annotations

import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Literal

TypeKind = Literal["object", "interface", "union", "enum", "input", "scalar"]


class SupergraphError(Exception):
    """The supergraph SDL is invalid or uses a feature the router does not support."""


@dataclass(frozen=True, slots=True)
class Subgraph:
    """One subgraph: its name (as in `join__graph(name:)`), enum value and URL."""

    name: str
    graph: str
    url: str


@dataclass(frozen=True, slots=True)
class FieldSetItem:
    """One selection of a key/requires/provides field set: a field, or an inline fragment."""

    name: str
    selections: tuple[FieldSetItem, ...] = ()
    type_condition: str | None = None  # set (and name == "") for `... on T { }`
    arguments: str = ""  # printed, e.g. `(currency: "EUR")` (only in @requires)

    @property
    def response_key(self) -> str:
        """Where the value is fetched: a field with arguments gets its own alias, so a client's
        selection of the same field with other arguments cannot conflict with it."""
        if not self.arguments:
            return self.name
        return f"_required_{self.name}_{zlib.crc32(self.arguments.encode()):08x}"

    def print(self) -> str:
        inner = " ".join(item.print() for item in self.selections)
        head = (
            f"... on {self.type_condition}" if self.type_condition else self.name + self.arguments
        )
        return f"{head} {{ {inner} }}" if self.selections else head


FieldSet = tuple[FieldSetItem, ...]


def named_type(type_ref: str) -> str:
    """`[Product!]!` -> `Product`."""
    return type_ref.replace("[", "").replace("]", "").replace("!", "")


def list_depth(type_ref: str) -> int:
    return type_ref.count("[")


def print_field_set(field_set: FieldSet) -> str:
    return " ".join(item.print() for item in field_set)


@dataclass(frozen=True, slots=True)
class EntityKey:
    """`@key` of a type in one subgraph; `resolvable=False` keys are never fetch targets."""

    subgraph: str
    fields: FieldSet
    resolvable: bool = True

    @property
    def text(self) -> str:
        return print_field_set(self.fields)


@dataclass(frozen=True, slots=True)
class ContextArgument:
    """An argument a subgraph takes from an ancestor's data (`@fromContext`)."""

    name: str
    type: str
    context: str
    selection: FieldSet


@dataclass(frozen=True, slots=True)
class FieldSource:
    """What one subgraph declares about a field (`@join__field`)."""

    subgraph: str
    external: bool = False
    requires: FieldSet = ()
    provides: FieldSet = ()
    override: str | None = None
    override_label: str | None = None
    used_overridden: bool = False
    context_arguments: tuple[ContextArgument, ...] = ()
    # The field's type in this subgraph when it differs from the supergraph's (`type:`).
    type_ref: str | None = None


def resolvable_sources(
    sources: tuple[FieldSource, ...] | list[FieldSource], labels: frozenset[str]
) -> frozenset[str]:
    """The subgraphs that resolve a field, given the progressive `@override` labels in force:
    an override without a label, or with one in force, takes the field from its old subgraph;
    one whose label is not in force leaves it there."""
    taken: set[str] = set()
    withheld: set[str] = set()
    for source in sources:
        if source.override:
            if source.override_label is None or source.override_label in labels:
                taken.add(source.override)
            else:
                withheld.add(source.subgraph)
    return frozenset(
        source.subgraph
        for source in sources
        if not source.external
        and not source.used_overridden
        and source.subgraph not in taken | withheld
    )


@dataclass(frozen=True, slots=True)
class FieldInfo:
    """A field of a composite type: its type and the subgraphs that can resolve it."""

    name: str
    type_name: str
    type_ref: str  # as printed in the supergraph, e.g. `[Product!]!`
    list_depth: int
    sources: tuple[FieldSource, ...]
    resolvable_in: frozenset[str]
    arguments: tuple[tuple[str, str], ...] = ()  # (name, printed type)

    def source(self, subgraph: str) -> FieldSource | None:
        for source in self.sources:
            if source.subgraph == subgraph:
                return source
        return None

    def type_ref_in(self, subgraph: str) -> str:
        """The field's type as `subgraph` declares it (nullability and type may differ)."""
        source = self.source(subgraph)
        return source.type_ref if source is not None and source.type_ref else self.type_ref

    def type_name_in(self, subgraph: str) -> str:
        return named_type(self.type_ref_in(subgraph))


@dataclass(frozen=True, slots=True)
class TypeInfo:
    """A named type of the supergraph and where each part of it lives."""

    name: str
    kind: TypeKind
    subgraphs: frozenset[str]
    keys: tuple[EntityKey, ...] = ()
    interface_object_in: frozenset[str] = frozenset()
    fields: Mapping[str, FieldInfo] = field(default_factory=dict)
    # Supergraph-wide interfaces, and per subgraph the ones it declares (`@join__implements`).
    interfaces: tuple[str, ...] = ()
    implements_in: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Unions: every member, and per subgraph its members (`@join__unionMember`).
    members: tuple[str, ...] = ()
    members_in: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # Enums: every value and the subgraphs that define it (`@join__enumValue`).
    enum_values: Mapping[str, frozenset[str]] = field(default_factory=dict)
    inaccessible: bool = False
    contexts: frozenset[str] = frozenset()  # `@context(name:)` set on this type

    def keys_in(self, subgraph: str) -> tuple[EntityKey, ...]:
        return tuple(key for key in self.keys if key.subgraph == subgraph)

    def is_entity_in(self, subgraph: str) -> bool:
        return any(key.subgraph == subgraph and key.resolvable for key in self.keys)


@dataclass(frozen=True, slots=True)
class Supergraph:
    """Everything the planner and executor know about the federated graph."""

    subgraphs: Mapping[str, Subgraph]
    types: Mapping[str, TypeInfo]
    query_type: str
    mutation_type: str | None
    subscription_type: str | None
    api_sdl: str
    hash: str
    # Interface name -> object types implementing it (supergraph-wide), in declaration order.
    implementations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    # Per subgraph, the SDL of the schema it serves (what its fetches are checked against).
    subgraph_sdls: Mapping[str, str] = field(default_factory=dict)

    def possible_types(self, type_name: str, subgraph: str | None = None) -> tuple[str, ...]:
        """Object types a value of `type_name` can have (as `subgraph` sees it, if given)."""
        info = self.types[type_name]
        if info.kind == "object":
            return (type_name,)
        if info.kind == "union":
            if subgraph is None:
                return info.members
            return tuple(m for m in info.members if m in info.members_in.get(subgraph, ()))
        found = self.implementations.get(type_name, ())
        if subgraph is None:
            return found
        return tuple(
            name for name in found if type_name in self.types[name].implements_in.get(subgraph, ())
        )

    def with_override_labels(self, labels: frozenset[str]) -> Supergraph:
        """This supergraph with the progressive overrides of `labels` in force."""
        key = (self.hash, labels)
        found = _WITH_LABELS.get(key)
        if found is None:
            types = dict(self.types)
            for name, info in self.types.items():
                fields = dict(info.fields)
                changed = False
                for field_name, field_info in info.fields.items():
                    if any(s.override_label for s in field_info.sources):
                        fields[field_name] = replace(
                            field_info,
                            resolvable_in=resolvable_sources(field_info.sources, labels),
                        )
                        changed = True
                if changed:
                    types[name] = replace(info, fields=fields)
            found = replace(self, types=types)
            if len(_WITH_LABELS) > 64:
                _WITH_LABELS.clear()
            _WITH_LABELS[key] = found
        return found

    def root_type(self, operation: str) -> str | None:
        return {
            "query": self.query_type,
            "mutation": self.mutation_type,
            "subscription": self.subscription_type,
        }[operation]


# Supergraphs with progressive override labels applied, per (supergraph hash, labels).
_WITH_LABELS: dict[tuple[str, frozenset[str]], Supergraph] = {}
