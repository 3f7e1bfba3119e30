"""Fetch groups: the mutable working state of the planner, one per future subgraph fetch."""

from __future__ import annotations

from dataclasses import dataclass, field

from router.planning.operation import ConditionTerm, Field, Fragment, Selection
from router.planning.selections import OutField, OutFragment, OutSelections
from router.supergraph import FieldSet, FieldSetItem


@dataclass(eq=False)
class FetchGroup:
    id: int
    subgraph: str
    path: tuple[str, ...]
    conditions: tuple[ConditionTerm, ...]
    is_entity: bool
    run: int  # mutations: index of the root-field run this group belongs to
    selections: OutSelections = field(default_factory=OutSelections)
    requires: OutSelections = field(default_factory=OutSelections)
    depends_on: set[int] = field(default_factory=set)
    # Per type, the top-level key fields: an object with a null key is not fetched.
    key_fields: dict[str, set[str]] = field(default_factory=dict)
    # @interfaceObject: representations of these types are sent as the interface's type.
    typename_rewrites: dict[str, str] = field(default_factory=dict)
    # The answer's `__typename` is the concrete type of objects known so far by an interface.
    refines_typename: bool = False
    # `@fromContext` arguments of fields in this fetch: (variable, type, ancestor path, selection).
    context_uses: list[tuple[str, str, tuple[str, ...], FieldSet]] = field(default_factory=list)

    def add_requirement(self, type_name: str, field_set: FieldSet, key: FieldSet) -> None:
        self.key_fields.setdefault(type_name, set()).update(
            item.name for item in key if not item.type_condition
        )
        fragment = self.requires.fragment(type_name)
        fragment.selections.field("__typename", "__typename")
        fragment.selections.add_field_set(field_set)

    def accepts(self, type_name: str, field_set: FieldSet) -> bool:
        """Whether `field_set` fits this fetch's representations of `type_name`: a field
        required with other arguments (`price(currency: "USD")` beside `"EUR"`) does not,
        as a representation holds one value per field name."""
        found = self.requires.items.get(("t", type_name, ""))
        return found is None or _compatible(found.selections, field_set)

    def requirements(self) -> dict[str, FieldSet]:
        """Per type, the representation field set (without `__typename`)."""
        found: dict[str, FieldSet] = {}
        for item in self.requires.items.values():
            assert isinstance(item, OutFragment)
            found[item.type_condition] = tuple(
                i for i in to_field_set(item.selections) if i.name != "__typename"
            )
        return found


def _compatible(selections: OutSelections, field_set: FieldSet) -> bool:
    for item in field_set:
        for existing in selections.items.values():
            if item.type_condition:
                same = isinstance(existing, OutFragment) and (
                    existing.type_condition == item.type_condition
                )
                if same and not _compatible(existing.selections, item.selections):
                    return False
            elif isinstance(existing, OutField) and existing.name == item.name:
                if existing.arguments != item.arguments:
                    return False
                if not _compatible(existing.selections, item.selections):
                    return False
    return True


def to_field_set(selections: OutSelections) -> FieldSet:
    items: list[FieldSetItem] = []
    for item in selections.items.values():
        if isinstance(item, OutField):
            items.append(
                FieldSetItem(item.name, to_field_set(item.selections), arguments=item.arguments)
            )
        else:
            items.append(FieldSetItem("", to_field_set(item.selections), item.type_condition))
    return tuple(items)


def field_set_selections(field_set: FieldSet) -> tuple[Selection, ...]:
    """A field set as planner selections, so requirements are planned like client fields."""
    found: list[Selection] = []
    for item in field_set:
        children = field_set_selections(item.selections)
        if item.type_condition:
            found.append(Fragment(item.type_condition, "", (), frozenset(), children))
        else:
            found.append(
                Field(item.response_key, item.name, item.arguments, "", (), frozenset(), children)
            )
    return tuple(found)


def unique_conditions(terms: tuple[ConditionTerm, ...]) -> tuple[ConditionTerm, ...]:
    return tuple(dict.fromkeys(terms))
