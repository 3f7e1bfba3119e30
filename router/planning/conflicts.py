"""Fields of one fetch that the subgraph would refuse to merge, aliased apart.

GraphQL refuses two fields with one response key whose types differ in shape (`id: ID!` on
`User` and `id: ID` on `Admin` in one subgraph, selected in sibling fragments). Such a field
is sent under an alias, and the executor renames the answer back (`KeyRename`).
"""

from __future__ import annotations

from router.planning.nodes import KeyRename
from router.planning.selections import OutField, OutFragment, OutSelections
from router.supergraph import Supergraph
from router.supergraph.model import named_type

_Member = tuple[str | None, OutField, str | None]  # (parent type, field, type in the subgraph)


class _Aliaser:
    def __init__(self, supergraph: Supergraph, subgraph: str) -> None:
        self.sg = supergraph
        self.subgraph = subgraph
        self.renames: list[KeyRename] = []

    def type_ref(self, parent: str | None, name: str) -> str | None:
        info = self.sg.types.get(parent) if parent else None
        field = info.fields.get(name) if info is not None else None
        if name == "__typename":
            return "String!"
        return field.type_ref_in(self.subgraph) if field is not None else None

    def shape(self, type_ref: str | None) -> str | None:
        """What must be equal for two fields to merge: wrappers, and the leaf type."""
        if type_ref is None:
            return None
        named = named_type(type_ref)
        info = self.sg.types.get(named)
        if info is not None and info.kind in {"object", "interface", "union"}:
            return type_ref.replace(named, "*")
        return type_ref

    def members(self, parent: str | None, selections: OutSelections) -> list[_Member]:
        found: list[_Member] = []
        for item in selections.items.values():
            if isinstance(item, OutFragment):
                found.extend(self.members(item.type_condition, item.selections))
            else:
                found.append((parent, item, self.type_ref(parent, item.name)))
        return found

    def check(self, sets: list[tuple[str | None, OutSelections]], path: tuple[str, ...]) -> None:
        by_key: dict[str, list[_Member]] = {}
        for parent, selections in sets:
            for member in self.members(parent, selections):
                by_key.setdefault(member[1].response_key, []).append(member)
        for key, members in by_key.items():
            by_shape: dict[str | None, list[_Member]] = {}
            for member in members:
                by_shape.setdefault(self.shape(member[2]), []).append(member)
            kept, *others = by_shape.values()
            for other in others:
                alias = f"{key}__alias_{len(self.renames)}"
                self.renames.append(KeyRename(path, alias, key))
                for _, field, _ in other:
                    field.response_key = alias
                self.check_children(other, (*path, alias))
            self.check_children(kept, (*path, key))

    def check_children(self, members: list[_Member], path: tuple[str, ...]) -> None:
        composite = [
            (named_type(type_ref) if type_ref else None, field.selections)
            for _, field, type_ref in members
            if field.selections
        ]
        if composite:
            self.check(composite, path)


def alias_conflicts(
    supergraph: Supergraph, subgraph: str, parent: str | None, selections: OutSelections
) -> tuple[KeyRename, ...]:
    """Alias (in place) the fields of `selections` that would conflict in `subgraph`; the
    renames that undo it in the answer, deepest first."""
    aliaser = _Aliaser(supergraph, subgraph)
    aliaser.check([(parent, selections)], ())
    return tuple(sorted(aliaser.renames, key=lambda r: -len(r.path)))
