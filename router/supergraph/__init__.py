"""The supergraph: a Federation supergraph SDL read into frozen data, and its API schema."""

from router.supergraph.fieldsets import parse_field_set
from router.supergraph.model import (
    EntityKey,
    FieldInfo,
    FieldSet,
    FieldSetItem,
    FieldSource,
    Subgraph,
    Supergraph,
    SupergraphError,
    TypeInfo,
    print_field_set,
)
from router.supergraph.parse import parse_supergraph

__all__ = [
    "EntityKey",
    "FieldInfo",
    "FieldSet",
    "FieldSetItem",
    "FieldSource",
    "Subgraph",
    "Supergraph",
    "SupergraphError",
    "TypeInfo",
    "parse_field_set",
    "parse_supergraph",
    "print_field_set",
]
