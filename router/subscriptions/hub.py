"""De-duplicated upstream subscriptions: identical ones share one subgraph WebSocket, fanned out
to a bounded mailbox per client (a client that falls behind is cut off, never buffered)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import aiohttp
import orjson

from core.events.timing import now_ms
from core.security.router_proof import RouterSigner
from router.subscriptions.upstream import UpstreamFailure, subscribe_upstream

log = logging.getLogger("unityplan.router.subscriptions")


@dataclass(frozen=True, slots=True)
class UpstreamKey:
    """What makes two upstream subscriptions identical. `viewer` is the session the subgraph
    authorizes every event for (its privacy rules read the caller), so different sessions
    never share an upstream; anonymous subscribers share one."""

    subgraph: str
    document: str
    variables: str
    viewer: str

    @classmethod
    def of(
        cls, subgraph: str, document: str, variables: Mapping[str, Any], viewer: str | None
    ) -> UpstreamKey:
        return cls(subgraph, document, canonical_json(variables), viewer or "")


def canonical_json(value: Any) -> str:
    """`value` as JSON with sorted keys, as text: kept as long as a subscription lives, and
    orjson's bytes keep the whole buffer they were written in (4 KiB however short)."""
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS).decode()


@dataclass(frozen=True, slots=True)
class Ended:
    """The upstream is over: completed (`errors` empty) or failed with GraphQL errors."""

    errors: list[dict[str, Any]] = field(default_factory=list)


@dataclass(eq=False, slots=True)
class UpstreamEvent:
    """One event of an upstream, the same object in every client's mailbox. `completions`
    holds the response completed for each distinct client operation, computed once: clients
    of one upstream are one session (or all anonymous), so they are allowed the same data."""

    payload: dict[str, Any]
    completions: dict[tuple[int, str], asyncio.Task[bytes]] = field(default_factory=dict)
    # When the router read it from the subgraph (ms since the epoch, see core.events.timing).
    received_at: float = field(default_factory=now_ms)


class SlowConsumer(Exception):
    """The client did not take events as fast as they came; its mailbox overflowed."""


class Mailbox:
    """The events of one client subscription, at most `capacity` waiting.

    Kept small, as there is one per client subscription and most of them wait idle: a list
    (a few events at most are ever waiting) and a future only while the client waits."""

    __slots__ = ("_items", "_waiter", "capacity", "on_overflow", "overflowed")

    def __init__(self, capacity: int) -> None:
        self.capacity = capacity
        self._items: list[UpstreamEvent | Ended] = []
        self._waiter: asyncio.Future[None] | None = None
        self.overflowed = False
        # Called once on overflow: the transport aborts the connection, whose writes may block.
        self.on_overflow: Callable[[], None] | None = None

    def _wake(self) -> None:
        if self._waiter is not None and not self._waiter.done():
            self._waiter.set_result(None)

    def put(self, event: UpstreamEvent) -> bool:
        if self.overflowed:
            return False
        if len(self._items) >= self.capacity:
            self.overflowed = True
            self._wake()
            if self.on_overflow is not None:
                self.on_overflow()
            return False
        self._items.append(event)
        self._wake()
        return True

    def cut(self, ended: Ended) -> None:
        """End now, dropping what is still waiting (the viewer may no longer see it)."""
        self._items.clear()
        self.end(ended)

    def end(self, ended: Ended) -> None:
        self._items.append(ended)
        self._wake()

    async def get(self) -> UpstreamEvent | Ended:
        while not self._items:
            if self.overflowed:
                raise SlowConsumer()
            self._waiter = asyncio.get_running_loop().create_future()
            try:
                await self._waiter
            finally:
                self._waiter = None
        if self.overflowed:
            raise SlowConsumer()
        return self._items.pop(0)


class _Upstream:
    def __init__(self) -> None:
        self.mailboxes: set[Mailbox] = set()
        self.task: asyncio.Task[None] | None = None
        self.received = 0


class SubscriptionHub:
    """The router's upstream subscriptions, one per distinct `UpstreamKey`."""

    def __init__(self, *, mailbox_capacity: int = 100, signer: RouterSigner | None = None) -> None:
        self.mailbox_capacity = mailbox_capacity
        # Signs each upstream WebSocket's upgrade (subgraphs refuse unsigned ones).
        self.signer = signer
        self._upstreams: dict[UpstreamKey, _Upstream] = {}
        self._session: aiohttp.ClientSession | None = None

    @property
    def upstream_count(self) -> int:
        return len(self._upstreams)

    @property
    def client_count(self) -> int:
        """Client subscriptions fed by the upstreams."""
        return sum(len(upstream.mailboxes) for upstream in self._upstreams.values())

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None or self._session.closed:
            self._session = aiohttp.ClientSession(skip_auto_headers=("User-Agent",))
        return self._session

    def attach(
        self,
        key: UpstreamKey,
        url: str,
        payload: Mapping[str, Any],
        authorization: str | None,
    ) -> Mailbox:
        """A mailbox receiving the events of `key`'s upstream, opened now if it is not yet."""
        mailbox = Mailbox(self.mailbox_capacity)
        upstream = self._upstreams.get(key)
        if upstream is None:
            upstream = self._upstreams[key] = _Upstream()
            upstream.task = asyncio.create_task(
                self._pump(key, upstream, url, dict(payload), authorization),
                name=f"upstream:{key.subgraph}",
            )
        upstream.mailboxes.add(mailbox)
        return mailbox

    def detach(self, key: UpstreamKey, mailbox: Mailbox) -> None:
        """The client is gone; the upstream closes with its last client."""
        upstream = self._upstreams.get(key)
        if upstream is None:
            return
        upstream.mailboxes.discard(mailbox)
        if not upstream.mailboxes:
            del self._upstreams[key]
            if upstream.task is not None:
                upstream.task.cancel()

    async def _pump(
        self,
        key: UpstreamKey,
        upstream: _Upstream,
        url: str,
        payload: dict[str, Any],
        authorization: str | None,
    ) -> None:
        ended = Ended()
        try:
            async for event in subscribe_upstream(
                self._http(), key.subgraph, url, payload, authorization, signer=self.signer
            ):
                upstream.received += 1
                shared = UpstreamEvent(event)
                for mailbox in list(upstream.mailboxes):
                    if not mailbox.put(shared):
                        upstream.mailboxes.discard(mailbox)
        except UpstreamFailure as failure:
            ended = Ended(failure.errors)
        except Exception as exc:  # a bug must end the clients' streams, not leave them hanging
            log.exception("upstream subscription to %s failed", key.subgraph)
            ended = Ended([{"message": f"Subscription failed: {type(exc).__name__}"}])
        finally:
            if self._upstreams.get(key) is upstream:
                del self._upstreams[key]
            for mailbox in upstream.mailboxes:
                mailbox.end(ended)

    async def close(self) -> None:
        """End every upstream (clients see their streams complete) and the HTTP session."""
        upstreams, self._upstreams = self._upstreams, {}
        for upstream in upstreams.values():
            if upstream.task is not None:
                upstream.task.cancel()
        for upstream in upstreams.values():
            if upstream.task is not None:
                with contextlib.suppress(asyncio.CancelledError):
                    await upstream.task
        if self._session is not None:
            await self._session.close()
