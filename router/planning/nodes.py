"""The query plan: a frozen tree of Sequence, Parallel, Flatten, Fetch and Condition nodes."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

from router.supergraph import FieldSet


@dataclass(frozen=True, slots=True)
class ContextUse:
    """A `@fromContext` argument: sent as `$variable`, its value read with `selection` from the
    ancestor object at `path` (a prefix of the fetch's path)."""

    variable: str
    type: str
    path: tuple[str, ...]
    selection: FieldSet


@dataclass(frozen=True, slots=True)
class KeyRename:
    """In a fetch's answer, objects at `path` (response keys from the fetched root or entity,
    lists stepped through) carry `alias`, sent to keep apart fields the subgraph would refuse
    to merge; the executor renames it `name`."""

    path: tuple[str, ...]
    alias: str
    name: str


@dataclass(frozen=True, slots=True)
class Fetch:
    """One request to a subgraph; with `requires` it is an `_entities` fetch for the objects
    found at the enclosing Flatten's path whose `__typename` has an entry in `requires`."""

    id: int
    subgraph: str
    operation: str
    operation_kind: str
    variable_usages: tuple[str, ...]
    # Entity fetches: per possible `__typename`, the representation's field set.
    requires: Mapping[str, FieldSet] = field(default_factory=dict)
    # Per type, the top-level key fields; objects whose key is null are not fetched.
    key_fields: Mapping[str, frozenset[str]] = field(default_factory=dict)
    # @interfaceObject: `__typename` of representations to send instead of the object's own.
    input_rewrites: Mapping[str, str] = field(default_factory=dict)
    # Whether the answer's `__typename` replaces the one in the response tree.
    refines_typename: bool = False
    # `@fromContext` arguments: representations are sent in groups of equal context values.
    context_uses: tuple[ContextUse, ...] = ()
    # Shown in the printed plan: the representation selection as written for the subgraph.
    requires_text: str = ""
    # Entity selection without the `_entities` wrapper, for combining fetches into one request.
    entity_selection: str = ""
    # Aliased fields to rename back in the answer, deepest first.
    output_renames: tuple[KeyRename, ...] = ()

    @property
    def is_entity_fetch(self) -> bool:
        return bool(self.requires)


@dataclass(frozen=True, slots=True)
class Flatten:
    path: tuple[str, ...]  # response keys; "@" steps into every element of a list
    node: Fetch


@dataclass(frozen=True, slots=True)
class Sequence:
    nodes: tuple[PlanNode, ...]


@dataclass(frozen=True, slots=True)
class Parallel:
    nodes: tuple[PlanNode, ...]


@dataclass(frozen=True, slots=True)
class Condition:
    """Runs `if_clause` when the Boolean variable is true, else `else_clause`."""

    variable: str
    if_clause: PlanNode | None
    else_clause: PlanNode | None


PlanNode = Fetch | Flatten | Sequence | Parallel | Condition


@dataclass(frozen=True, slots=True)
class QueryPlan:
    kind: str
    node: PlanNode | None
    # Variable definitions of the client operation (for entity fetch batching).
    variable_definitions: Mapping[str, str] = field(default_factory=dict)
