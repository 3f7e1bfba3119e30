"""Identical work in flight done once; callers asking for the same thing meanwhile share it."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Hashable, Mapping
from typing import Generic, TypeVar

from core.observability.tracing import TRACE_HEADERS

Key = TypeVar("Key", bound=Hashable)
Value = TypeVar("Value")


class Inflight(Generic[Key, Value]):
    """Runs one task per key at a time; callers arriving while it runs await the same task.

    The task is shielded: a caller that goes away does not cancel the work the others wait for.
    Nothing is kept once the task ends, so this is sharing, never caching."""

    def __init__(self) -> None:
        self._running: dict[Key, asyncio.Future[Value]] = {}
        # How many callers were answered by another caller's work (for tests and metrics).
        self.shared = 0

    def __len__(self) -> int:
        return len(self._running)

    async def share(self, key: Key, work: Callable[[], Awaitable[Value]]) -> Value:
        running = self._running.get(key)
        if running is None:
            running = asyncio.ensure_future(work())
            self._running[key] = running
            running.add_done_callback(lambda done: self._finished(key, done))
        else:
            self.shared += 1
        return await asyncio.shield(running)

    def _finished(self, key: Key, done: asyncio.Future[Value]) -> None:
        if self._running.get(key) is done:
            del self._running[key]
        # Retrieved here so a failure whose callers all went away is not reported as unhandled.
        if not done.cancelled():
            done.exception()


def fetch_key(
    subgraph: str, body: bytes, headers: Mapping[str, str]
) -> tuple[str, bytes, tuple[tuple[str, str], ...]]:
    """What makes two subgraph fetches the same: target, exact body and the caller's headers
    (Authorization among them, so fetches of different viewers are never shared)."""
    kept = tuple(sorted((k, v) for k, v in headers.items() if k not in TRACE_HEADERS))
    return (subgraph, body, kept)


def is_query_document(document: object) -> bool:
    """Only reads may be shared: a subgraph mutation runs once per client request."""
    if not isinstance(document, str):
        return False
    start = document.lstrip()
    return start.startswith(("query", "{"))
