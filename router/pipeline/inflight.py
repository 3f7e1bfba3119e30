"""Inbound de-duplication, a pipeline stage: identical queries of the same viewer in flight share
one execution."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from typing import Any

import orjson

from core.observability.tracing import TRACE_HEADERS
from router.execution.fetch_sharing import Inflight

# Request headers that can change an answer: who is asking (token, session cookie, the
# introspection key) besides every header the router sends on to subgraphs.
VIEWER_HEADERS = ("authorization", "cookie", "x-introspection-key")

QueryKey = tuple[str, str, str | None, bytes, tuple[tuple[str, str], ...]]


def query_key(
    supergraph_hash: str,
    query: str,
    operation_name: str | None,
    variables: Mapping[str, Any],
    headers: Mapping[str, str],
    forwarded: Mapping[str, str],
) -> QueryKey:
    """Two requests with equal keys get the same answer: same supergraph, document, operation,
    variables and viewer. Anything that identifies the viewer is part of the key, so one
    viewer's response is never handed to another."""
    identity = {name: headers[name] for name in VIEWER_HEADERS if name in headers}
    identity.update((k, v) for k, v in forwarded.items() if k not in TRACE_HEADERS)
    return (
        supergraph_hash,
        query,
        operation_name,
        orjson.dumps(variables, option=orjson.OPT_SORT_KEYS),
        tuple(sorted(identity.items())),
    )


class SharedAnswer(dict[str, Any]):
    """An answer that several requests share: encoded to JSON once, for all of them."""

    __slots__ = ("_encoded",)

    def __init__(self, answer: Mapping[str, Any]) -> None:
        super().__init__(answer)
        self._encoded: bytes | None = None

    def encoded(self) -> bytes:
        if self._encoded is None:
            self._encoded = orjson.dumps(self)
        return self._encoded


def response_bytes(answer: Any) -> bytes:
    """The JSON body of an answer (a shared one is encoded only once)."""
    if isinstance(answer, SharedAnswer):
        return answer.encoded()
    return orjson.dumps(answer)


class InflightQueries:
    """The router's queries in flight, by `query_key`; off when `enabled` is false."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self._inflight: Inflight[QueryKey, Any] = Inflight()

    @property
    def shared(self) -> int:
        """How many requests were answered by another request's execution."""
        return self._inflight.shared

    async def answer(self, key: QueryKey, execute: Callable[[], Awaitable[Any]]) -> Any:
        if not self.enabled:
            return await execute()

        async def shared() -> SharedAnswer:
            return SharedAnswer(await execute())

        return await self._inflight.share(key, shared)
