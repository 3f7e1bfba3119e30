"""Selection sets for one subgraph fetch: merged as fields are added, then printed."""

from __future__ import annotations

from collections.abc import Iterator

from router.supergraph import FieldSet


class OutField:
    __slots__ = ("arguments", "directives", "name", "response_key", "selections", "variables")

    def __init__(
        self,
        response_key: str,
        name: str,
        arguments: str = "",
        directives: str = "",
        variables: frozenset[str] = frozenset(),
    ) -> None:
        self.response_key = response_key
        self.name = name
        self.arguments = arguments
        self.directives = directives
        self.variables = variables
        self.selections = OutSelections()

    def print(self) -> str:
        head = self.name if self.response_key == self.name else f"{self.response_key}: {self.name}"
        text = head + self.arguments + (" " + self.directives if self.directives else "")
        return f"{text} {self.selections.print()}" if self.selections else text


class OutFragment:
    __slots__ = ("directives", "selections", "type_condition", "variables")

    def __init__(
        self, type_condition: str, directives: str = "", variables: frozenset[str] = frozenset()
    ) -> None:
        self.type_condition = type_condition
        self.directives = directives
        self.variables = variables
        self.selections = OutSelections()

    def print(self) -> str:
        directives = " " + self.directives if self.directives else ""
        return f"... on {self.type_condition}{directives} {self.selections.print()}"


class OutSelections:
    """An ordered selection set where adding an identical field twice merges them."""

    __slots__ = ("items",)

    def __init__(self) -> None:
        self.items: dict[tuple[str, ...], OutField | OutFragment] = {}

    def __bool__(self) -> bool:
        return any(
            isinstance(item, OutField) or bool(item.selections) for item in self.items.values()
        )

    def field(
        self,
        response_key: str,
        name: str,
        arguments: str = "",
        directives: str = "",
        variables: frozenset[str] = frozenset(),
    ) -> OutField:
        identity = ("f", response_key, name, arguments, directives)
        found = self.items.get(identity)
        if found is None:
            found = self.items[identity] = OutField(
                response_key, name, arguments, directives, variables
            )
        assert isinstance(found, OutField)
        return found

    def fragment(
        self, type_condition: str, directives: str = "", variables: frozenset[str] = frozenset()
    ) -> OutFragment:
        identity = ("t", type_condition, directives)
        found = self.items.get(identity)
        if found is None:
            found = self.items[identity] = OutFragment(type_condition, directives, variables)
        assert isinstance(found, OutFragment)
        return found

    def add_field_set(self, field_set: FieldSet) -> None:
        for item in field_set:
            target = (
                self.fragment(item.type_condition)
                if item.type_condition
                else self.field(item.response_key, item.name, item.arguments)
            )
            target.selections.add_field_set(item.selections)

    def print(self) -> str:
        parts = [
            item.print()
            for item in self.items.values()
            if isinstance(item, OutField) or item.selections
        ]
        return "{ " + " ".join(parts) + " }"

    def variables(self) -> Iterator[str]:
        for item in self.items.values():
            yield from item.variables
            yield from item.selections.variables()
