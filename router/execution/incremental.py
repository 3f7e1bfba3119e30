"""Incremental delivery of a `@defer` query: the primary payload, then the deferred fragments.

The primary document and the complete document are planned separately and run at the same
time; the primary payload goes out as soon as its own fetch groups are done, and each
deferred fragment is then answered from the complete result at its paths."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Mapping
from typing import Any

from router.execution.gateway import Gateway
from router.pipeline.document import PreparedOperation
from router.pipeline.outcome import Refused
from router.planning.defer import DeferredFragment

Path = list[str | int]


class Incremental:
    """The payloads of one deferred query, produced while they are sent."""

    def __init__(
        self,
        gateway: Gateway,
        fragments: tuple[DeferredFragment, ...],
        operations: tuple[PreparedOperation, PreparedOperation],
        variables: tuple[dict[str, Any], dict[str, Any]],
        headers: Mapping[str, str],
    ) -> None:
        self.gateway = gateway
        self.fragments = fragments
        self.primary, self.complete = operations
        self.primary_variables, self.complete_variables = variables
        self.headers = headers

    @classmethod
    def prepare(
        cls,
        gateway: Gateway,
        complete: PreparedOperation,
        complete_variables: dict[str, Any],
        inputs: Mapping[str, Any] | None,
        headers: Mapping[str, str],
    ) -> Incremental | None:
        """None when nothing is deferred or the primary part cannot run on its own (then the
        complete result is answered at once, which `@defer` allows)."""
        deferred = complete.deferred
        if deferred is None:
            return None
        try:
            primary_variables = gateway.coerce_variables(deferred.primary, inputs)
        except Refused:
            return None
        return cls(
            gateway,
            deferred.fragments,
            (deferred.primary, complete),
            (primary_variables, complete_variables),
            headers,
        )

    async def payloads(self) -> AsyncIterator[dict[str, Any]]:
        gateway = self.gateway
        complete_run = asyncio.ensure_future(
            gateway.execute(self.complete, self.complete_variables, self.headers)
        )
        try:
            initial = await gateway.execute(self.primary, self.primary_variables, self.headers)
        except BaseException:
            complete_run.cancel()
            raise
        yield {**initial, "hasNext": True}
        result = await complete_run
        yield {"incremental": deferred_items(self.fragments, result), "hasNext": False}


def deferred_items(
    deferred: tuple[DeferredFragment, ...], result: Mapping[str, Any]
) -> list[dict[str, Any]]:
    """One incremental item per deferred fragment and object it applies to, with the errors
    raised below it."""
    errors = [e for e in result.get("errors") or () if isinstance(e.get("path"), list)]
    items: list[dict[str, Any]] = []
    for fragment in deferred:
        for path, obj in _objects_at(result.get("data"), fragment.path, []):
            data = {key: obj[key] for key in obj if key in fragment.keys}
            if not data:
                continue  # an object of another type than the fragment's
            item: dict[str, Any] = {"data": data, "path": path}
            if fragment.label is not None:
                item["label"] = fragment.label
            below = [
                e
                for e in errors
                if e["path"][: len(path)] == path
                and len(e["path"]) > len(path)
                and e["path"][len(path)] in fragment.keys
            ]
            if below:
                item["errors"] = below
            items.append(item)
    return items


def _objects_at(value: Any, keys: tuple[str, ...], path: Path) -> list[tuple[Path, dict[str, Any]]]:
    if isinstance(value, list):
        found: list[tuple[Path, dict[str, Any]]] = []
        for index, item in enumerate(value):
            found += _objects_at(item, keys, [*path, index])
        return found
    if not isinstance(value, dict):
        return []
    if not keys:
        return [(path, value)]
    return _objects_at(value.get(keys[0]), keys[1:], [*path, keys[0]])
