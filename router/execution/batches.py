"""Collecting the representations of one entity fetch from the response tree.

Representations are de-duplicated (each distinct one is sent once and fills every object it
stands for); a fetch with `@fromContext` arguments is split into one batch per distinct set
of context values, each sent with its own variables.
"""

from __future__ import annotations

from typing import Any

import orjson

from router.execution.response_merge import objects_at, objects_with_paths, representation
from router.planning import Fetch, Flatten
from router.supergraph import FieldSet


class EntityBatch:
    """One entity fetch's unique representations and the response objects each one fills."""

    __slots__ = ("_seen", "context", "fetch", "path", "positions", "representations")

    def __init__(self, fetch: Fetch, path: tuple[str, ...], context: dict[str, Any]) -> None:
        self.fetch = fetch
        self.path = path
        self.context = context  # variable -> value of the `@fromContext` arguments
        self.representations: list[dict[str, Any]] = []
        self.positions: list[list[dict[str, Any]]] = []
        self._seen: dict[Any, int] = {}

    def add(self, rep: dict[str, Any], obj: dict[str, Any]) -> None:
        try:
            # Field order is the field set's, so flat representations compare as tuples.
            identity: Any = tuple(rep.values())
            hash(identity)
        except TypeError:
            identity = orjson.dumps(rep, option=orjson.OPT_SORT_KEYS)
        index = self._seen.get(identity)
        if index is None:
            self._seen[identity] = len(self.representations)
            self.representations.append(rep)
            self.positions.append([obj])
        else:
            self.positions[index].append(obj)


def _representation_of(fetch: Fetch, obj: dict[str, Any]) -> dict[str, Any] | None:
    typename = obj.get("__typename")
    if not isinstance(typename, str):
        return None
    field_set = fetch.requires.get(typename)
    if field_set is None:
        return None
    rep = representation(obj, typename, field_set)
    if rep is None:
        return None
    for name in fetch.key_fields.get(typename, ()):
        if rep.get(name) is None:
            return None  # a null key identifies nothing
    if typename in fetch.input_rewrites:
        rep["__typename"] = fetch.input_rewrites[typename]
    return rep


def build_batches(data: dict[str, Any], flatten: Flatten) -> list[EntityBatch]:
    fetch = flatten.node
    if not fetch.context_uses:
        batch = EntityBatch(fetch, flatten.path, {})
        for obj in objects_at(data, flatten.path):
            rep = _representation_of(fetch, obj)
            if rep is not None:
                batch.add(rep, obj)
        return [batch]
    by_context: dict[bytes, EntityBatch] = {}
    for obj, where in objects_with_paths(data, flatten.path):
        rep = _representation_of(fetch, obj)
        if rep is None:
            continue
        context = {
            use.variable: context_value(_at(data, where[: len(use.path)]), use.selection)
            for use in fetch.context_uses
        }
        identity = orjson.dumps(context, option=orjson.OPT_SORT_KEYS)
        found = by_context.get(identity)
        if found is None:
            found = by_context[identity] = EntityBatch(fetch, flatten.path, context)
        found.add(rep, obj)
    return list(by_context.values())


def _at(data: Any, path: tuple[str | int, ...]) -> Any:
    for step in path:
        if isinstance(step, int):
            data = data[step] if isinstance(data, list) and step < len(data) else None
        else:
            data = data.get(step) if isinstance(data, dict) else None
    return data


def context_value(obj: Any, selection: FieldSet) -> Any:
    """The value a `@fromContext` selection (one field, maybe nested) reads from `obj`."""
    value, items = obj, selection
    while items:
        if not isinstance(value, dict):
            return None
        item = next(
            (
                i
                for i in items
                if not i.type_condition or i.type_condition == value.get("__typename")
            ),
            None,
        )
        if item is None:
            return None
        if not item.type_condition:
            value = value.get(item.response_key)
        items = item.selections
    return value
