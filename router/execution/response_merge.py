"""Walking and merging the response tree: objects at a plan path, representations, deep merge."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from router.planning.nodes import KeyRename
from router.supergraph import FieldSet

Path = tuple[str | int, ...]


def objects_at(root: Any, path: tuple[str, ...]) -> list[dict[str, Any]]:
    """Every object found at `path` ("@" steps into list elements), in document order."""
    current: list[Any] = [root]
    for step in path:
        found: list[Any] = []
        if step == "@":
            for value in current:
                if isinstance(value, list):
                    found.extend(value)
        else:
            for value in current:
                if isinstance(value, dict):
                    child = value.get(step)
                    if child is not None:
                        found.append(child)
        current = found
    objects: list[dict[str, Any]] = []
    while current:
        nested: list[Any] = []
        for value in current:
            if isinstance(value, dict):
                objects.append(value)
            elif isinstance(value, list):  # a list deeper than the path says: flatten it
                nested.extend(value)
        current = nested
    return objects


def objects_with_paths(root: Any, path: tuple[str, ...]) -> list[tuple[dict[str, Any], Path]]:
    """Like `objects_at`, with each object's response path (only needed to report errors)."""
    found: list[tuple[dict[str, Any], Path]] = []

    def walk(value: Any, depth: int, where: Path) -> None:
        if value is None:
            return
        if depth == len(path):
            if isinstance(value, dict):
                found.append((value, where))
            elif isinstance(value, list):  # a list deeper than the path says: flatten it
                for index, item in enumerate(value):
                    walk(item, depth, (*where, index))
            return
        step = path[depth]
        if step == "@":
            if isinstance(value, list):
                for index, item in enumerate(value):
                    walk(item, depth + 1, (*where, index))
            return
        if isinstance(value, dict):
            walk(value.get(step), depth + 1, (*where, step))

    walk(root, 0, ())
    return found


def representation(
    obj: Mapping[str, Any], typename: str, field_set: FieldSet
) -> dict[str, Any] | None:
    """The `_Any` representation of `obj`; None when a key field is missing or null."""
    rep: dict[str, Any] = {"__typename": typename}
    for item in field_set:
        if item.type_condition:
            if obj.get("__typename", typename) == item.type_condition:
                inner = representation(obj, typename, item.selections)
                if inner is None:
                    return None
                rep.update(inner)
            continue
        key = item.response_key
        if key not in obj:
            return None
        value = obj[key]
        if item.selections and value is not None:
            value = _select(value, item.selections)
        rep[item.name] = value
    return rep


def _select(value: Any, field_set: FieldSet) -> Any:
    if isinstance(value, list):
        return [_select(item, field_set) for item in value]
    if not isinstance(value, dict):
        return value
    selected: dict[str, Any] = {}
    for item in field_set:
        if item.type_condition:
            if value.get("__typename") == item.type_condition:
                selected.update(_select(value, item.selections))
        elif item.response_key in value:
            inner = value[item.response_key]
            selected[item.name] = _select(inner, item.selections) if item.selections else inner
    return selected


def deep_merge(target: dict[str, Any], source: Mapping[str, Any]) -> None:
    """Merge a subgraph's answer into the response tree, keeping what is already there."""
    for key, value in source.items():
        if key in target:
            if key == "__typename":
                continue
            target[key] = _merged(target[key], value)
        else:
            target[key] = value


def _merged(current: Any, value: Any) -> Any:
    if isinstance(current, dict) and isinstance(value, dict):
        deep_merge(current, value)
        return current
    if isinstance(current, list) and isinstance(value, list) and len(current) == len(value):
        for index, item in enumerate(value):
            current[index] = _merged(current[index], item)
        return current
    return current if value is None else value


def rename_keys(value: Any, renames: tuple[KeyRename, ...]) -> None:
    """Undo the aliases a fetch sent to keep conflicting fields apart (deepest first)."""
    for rename in renames:
        _rename(value, rename.path, rename.alias, rename.name)


def _rename(value: Any, path: tuple[str, ...], alias: str, name: str) -> None:
    if isinstance(value, list):
        for item in value:
            _rename(item, path, alias, name)
    elif isinstance(value, dict):
        if path:
            _rename(value.get(path[0]), path[1:], alias, name)
        elif alias in value:
            value[name] = value.pop(alias)
