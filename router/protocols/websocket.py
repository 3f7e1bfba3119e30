"""GraphQL over WebSocket: graphql-transport-ws (the `graphql-ws` library's protocol) and, for
old clients, subscriptions-transport-ws (subprotocol `graphql-ws`). Both carry any operation:
a query or mutation answers one `next` and `complete`, a subscription one `next` per event."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, MutableMapping
from typing import Any

import orjson

from core.errors import Unauthenticated
from router.pipeline.inflight import response_bytes
from router.pipeline.outcome import Answered, Refused, Stage, Streaming
from router.pipeline.pipeline import Call, Door, forwarded_with
from router.pipeline.request import OperationRequest, operation_request
from router.protocols.realtime import (
    SLOW_CONSUMER_CLOSE,
    SLOW_CONSUMER_REASON,
    TOO_MANY_CONNECTIONS_CLOSE,
    Realtime,
)
from router.subscriptions import SlowConsumer, StreamError, Viewer

log = logging.getLogger("unityplan.router.subscriptions")

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

TRANSPORT_WS = "graphql-transport-ws"
LEGACY_WS = "graphql-ws"


class _Closed(Exception):
    """The connection is over (closed by us or by the client)."""


class WebSocketConnection:
    """One client WebSocket and its subscriptions, by operation id."""

    __slots__ = (
        "_closed",
        "_keepalive",
        "_pinging",
        "_reader",
        "_receive",
        "_send",
        "_send_lock",
        "acknowledged",
        "legacy",
        "operations",
        "protocol",
        "realtime",
        "scope",
        "viewer",
    )

    def __init__(self, realtime: Realtime, scope: Scope, receive: Receive, send: Send) -> None:
        self.realtime = realtime
        self.scope = scope
        self._receive = receive
        self._send = send
        self.protocol = TRANSPORT_WS
        self.legacy = False
        self.viewer: Viewer | None = None
        self.acknowledged = False
        self.operations: dict[str, asyncio.Task[None]] = {}
        self._send_lock = asyncio.Lock()
        self._closed = False
        self._reader: asyncio.Task[None] | None = None
        self._keepalive: asyncio.TimerHandle | None = None
        self._pinging: asyncio.Task[None] | None = None

    @property
    def headers(self) -> dict[str, str]:
        """The upgrade request's headers, read when an operation starts (not kept meanwhile:
        there is one connection object per client)."""
        return {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in self.scope["headers"]}

    # -- sending -------------------------------------------------------------------------------
    async def send(self, message: dict[str, Any]) -> None:
        await self.send_text(orjson.dumps(message).decode())

    async def send_text(self, text: str) -> None:
        if self._closed:
            raise _Closed()
        async with self._send_lock:
            try:
                await self._send({"type": "websocket.send", "text": text})
            except OSError:  # the client went away (uvicorn's ClientDisconnected)
                self._closed = True
                raise _Closed() from None

    async def close(self, code: int, reason: str) -> None:
        if self._closed:
            return
        self._closed = True
        for task in self.operations.values():
            task.cancel()
        if self._reader is not None and self._reader is not asyncio.current_task():
            self._reader.cancel()
        # A client that stopped reading may never let the close frame out: give up after a while.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(5):
                await self._send({"type": "websocket.close", "code": code, "reason": reason})

    def _overflowed(self) -> None:
        asyncio.get_running_loop().create_task(
            self.close(SLOW_CONSUMER_CLOSE, SLOW_CONSUMER_REASON)
        )

    # -- the connection ------------------------------------------------------------------------
    async def run(self) -> None:
        message = await self._receive()
        if message["type"] != "websocket.connect":
            return
        offered = self.scope.get("subprotocols") or []
        if TRANSPORT_WS in offered:
            self.protocol = TRANSPORT_WS
        elif LEGACY_WS in offered:
            self.protocol, self.legacy = LEGACY_WS, True
        else:
            await self._send({"type": "websocket.close", "code": 4406})  # refuses the handshake
            return
        await self._send({"type": "websocket.accept", "subprotocol": self.protocol})
        client = self.realtime.client_of(self.scope)
        refused = self.realtime.limits.acquire(client)
        if refused is not None:
            self._closed = True
            await self._send(
                {"type": "websocket.close", "code": TOO_MANY_CONNECTIONS_CLOSE, "reason": refused}
            )
            return
        self._schedule_keepalive()
        self._reader = asyncio.current_task()
        try:
            await self._serve()
        except (_Closed, asyncio.CancelledError):
            pass
        finally:
            self._closed = True
            if self._keepalive is not None:
                self._keepalive.cancel()
            for task in list(self.operations.values()):
                task.cancel()
            await asyncio.gather(*self.operations.values(), return_exceptions=True)
            if self.viewer is not None:
                self.realtime.service.watch.forget(self.viewer)
            self.realtime.limits.release(client)

    async def _serve(self) -> None:
        try:
            async with asyncio.timeout(
                self.realtime.settings.router.subscription_init_timeout_seconds
            ):
                first = await self._next_message()
        except TimeoutError:
            await self.close(4408, "Connection initialisation timeout")
            return
        if first is None:
            return
        await self._handle(first)
        # Messages are not kept while the next one is awaited: there is one connection per
        # client, and `connection_init` carries its token.
        del first
        while True:
            message = await self._next_message()
            if message is None:
                return
            await self._handle(message)
            del message

    async def _next_message(self) -> dict[str, Any] | None:
        """The client's next protocol message; None when it disconnected."""
        while True:
            message = await self._receive()
            if message["type"] == "websocket.disconnect":
                self._closed = True
                return None
            raw = message.get("text") or message.get("bytes")
            try:
                found = orjson.loads(raw) if raw else None
            except orjson.JSONDecodeError:
                found = None
            if isinstance(found, dict) and isinstance(found.get("type"), str):
                return found
            await self.close(4400, "Invalid message")
            return None

    async def _handle(self, message: dict[str, Any]) -> None:
        kind = message["type"]
        if kind == "connection_init":
            await self._init(message.get("payload"))
        elif kind == "ping" and not self.legacy:
            # Allowed at any time, before `connection_init` too.
            if self.acknowledged:
                await self._renew(message.get("payload"))
            await self.send({"type": "pong"})
        elif kind == "pong" and not self.legacy:
            pass
        elif not self.acknowledged:
            await self.close(4401, "Unauthorized")
        elif kind in {"subscribe", "start"}:
            await self._subscribe(message)
        elif kind in {"complete", "stop"}:
            task = self.operations.pop(str(message.get("id")), None)
            if task is not None:
                task.cancel()
        elif kind == "connection_terminate" and self.legacy:
            await self.close(1000, "Terminated")
        else:
            await self.close(4400, f"Unexpected message type {kind}")

    async def _init(self, payload: Any) -> None:
        if self.acknowledged:
            await self.close(4429, "Too many initialisation requests")
            return
        header = _authorization(payload)
        try:
            self.viewer = await self.realtime.pipeline.watch(header)
        except Refused as refused:
            message = str(refused.errors[0]["message"])
            if refused.stage is not Stage.AUTHENTICATION:
                await self.close(1011, message)  # fail closed: try again later
                return
            if self.legacy:
                await self.send({"type": "connection_error", "payload": {"message": message}})
            await self.close(4403, "Forbidden: " + message)
            return
        self.acknowledged = True
        await self.send({"type": "connection_ack"})

    async def _renew(self, payload: Any) -> None:
        """A ping may carry a fresh access token (after a refresh): streams live on with it."""
        header = _authorization(payload)
        if header is None or self.viewer is None:
            return
        try:
            await self.realtime.service.watch.renew(self.viewer, header)
        except Unauthenticated as exc:
            await self.close(4403, "Forbidden: " + str(exc))

    async def _subscribe(self, message: dict[str, Any]) -> None:
        operation_id = message.get("id")
        if not isinstance(operation_id, str) or not operation_id:
            await self.close(4400, "An operation needs an id")
            return
        try:
            request = operation_request(message.get("payload"))
        except Refused as refused:
            if not self.legacy:
                # graphql-transport-ws: a `subscribe` without a query is an invalid message.
                await self.close(4400, str(refused.errors[0]["message"]))
                return
            await self._error(operation_id, refused.errors)
            return
        if operation_id in self.operations:
            await self.close(4409, f"Subscriber for {operation_id} already exists")
            return
        if len(self.operations) >= self.realtime.settings.router.max_subscriptions_per_connection:
            refusal = "Too many operations on this connection"
            await self._error(
                operation_id, [{"message": refusal, "extensions": {"code": "RATE_LIMITED"}}]
            )
            return
        self.operations[operation_id] = asyncio.create_task(self._operate(operation_id, request))

    def _call(self) -> Call:
        viewer = self.viewer
        headers = self.headers
        forwarded = self.realtime.pipeline.edge.forwarded(headers, self.scope.get("client"))
        return Call(
            Door.WEBSOCKET,
            None,
            headers,
            forwarded_with(forwarded, viewer.authorization if viewer is not None else None),
            viewer.principal if viewer is not None else None,
            viewer=viewer,
            on_overflow=self._overflowed,
        )

    async def _operate(self, operation_id: str, request: OperationRequest) -> None:
        """One operation of the connection, from the pipeline's outcome to `complete`."""
        try:
            outcome = await self.realtime.pipeline.run(request, self._call())
            del request  # planned: its text is not kept while a subscription lives
            if isinstance(outcome, Refused):
                self.operations.pop(operation_id, None)
                await self._error(operation_id, outcome.errors)
                return
            if isinstance(outcome, Streaming):
                await self._pump(operation_id, outcome)
                return
            if isinstance(outcome, Answered):
                await self._next(operation_id, response_bytes(outcome.response))
        except (_Closed, asyncio.CancelledError):
            return
        if self.operations.pop(operation_id, None) is not None:
            with contextlib.suppress(_Closed):
                await self.send({"id": operation_id, "type": "complete"})

    async def _error(self, operation_id: str, errors: list[dict[str, Any]]) -> None:
        if self.legacy:
            # subscriptions-transport-ws: `error` carries one error; then the operation is over.
            await self.send({"id": operation_id, "type": "error", "payload": errors[0]})
            await self.send({"id": operation_id, "type": "complete"})
        else:
            await self.send({"id": operation_id, "type": "error", "payload": errors})

    async def _next(self, operation_id: str, payload: bytes) -> None:
        # The payload is JSON already (shared by every client of an event).
        kind = "data" if self.legacy else "next"
        head = orjson.dumps({"id": operation_id, "type": kind})[:-1] + b',"payload":'
        await self.send_text((head + payload + b"}").decode())

    async def _pump(self, operation_id: str, outcome: Streaming) -> None:
        stream = outcome.events
        try:
            async for payload in stream:
                await self._next(operation_id, payload)
        except StreamError as error:
            self.operations.pop(operation_id, None)
            with contextlib.suppress(_Closed):
                await self._error(operation_id, error.errors)
            return
        except (SlowConsumer, _Closed):
            return
        finally:
            await stream.aclose()  # type: ignore[attr-defined]
        if self.operations.pop(operation_id, None) is not None:
            with contextlib.suppress(_Closed):
                await self.send({"id": operation_id, "type": "complete"})

    # Keep-alives by timer, not by a task sleeping per connection: an idle connection then
    # holds one timer handle between pings.
    def _schedule_keepalive(self) -> None:
        if not self._closed:
            self._keepalive = asyncio.get_running_loop().call_later(
                self.realtime.keepalive_seconds, self._ping
            )

    def _ping(self) -> None:
        if self._closed:
            return
        if self.legacy and not self.acknowledged:
            self._schedule_keepalive()
            return
        self._pinging = asyncio.get_running_loop().create_task(self._send_ping())

    async def _send_ping(self) -> None:
        with contextlib.suppress(_Closed):
            await self.send_text('{"type":"ka"}' if self.legacy else '{"type":"ping"}')
            self._schedule_keepalive()


def _authorization(payload: Any) -> str | None:
    if not isinstance(payload, dict):
        return None
    header = payload.get("Authorization") or payload.get("authorization")
    return header if isinstance(header, str) else None


async def serve_websocket(realtime: Realtime, scope: Scope, receive: Receive, send: Send) -> None:
    """The ASGI handler of subscription WebSockets."""
    await WebSocketConnection(realtime, scope, receive, send).run()
