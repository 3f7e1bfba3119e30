"""Subscriptions over one HTTP response: GraphQL over SSE (graphql-sse, distinct connections
mode) and Apollo's multipart HTTP subscriptions (`multipart/mixed;subscriptionSpec=1.0`)."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from typing import Any

import orjson
from redis.exceptions import RedisError

from core.errors import Unauthenticated
from router.subscriptions import SlowConsumer, StreamError, SubscriptionRequestError, Viewer
from router.transport.http import HttpProblem, OperationRequest, read_get, read_post
from router.transport.realtime import Realtime

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]

EVENT_STREAM = "text/event-stream"
MULTIPART_CONTENT_TYPE = 'multipart/mixed;boundary="graphql";subscriptionSpec="1.0"'


def streaming_kind(headers: Mapping[str, str]) -> str | None:
    """`sse` or `multipart` when the request asks for a subscription stream, else None."""
    accept = headers.get("accept", "")
    if "subscriptionspec" in accept.lower().replace(" ", "") and "multipart/mixed" in accept:
        return "multipart"
    if EVENT_STREAM in accept:
        return "sse"
    return None


class _Format:
    """How events are framed on the wire."""

    content_type = EVENT_STREAM
    opening = b""
    closing = b"event: complete\ndata:\n\n"
    keepalive = b":\n\n"

    def next(self, payload: bytes, event_id: str | None = None) -> bytes:
        head = b"id: " + event_id.encode() + b"\n" if event_id else b""
        return head + b"event: next\ndata: " + payload + b"\n\n"

    def failed(self, errors: list[dict[str, Any]]) -> bytes:
        return self.next(orjson.dumps({"errors": errors})) + self.closing


class _Multipart(_Format):
    content_type = MULTIPART_CONTENT_TYPE
    opening = b"\r\n--graphql"
    closing = b"--\r\n"
    keepalive = b"\r\ncontent-type: application/json\r\n\r\n{}\r\n--graphql"

    def next(self, payload: bytes, event_id: str | None = None) -> bytes:
        return (
            b"\r\ncontent-type: application/json\r\n\r\n"
            + b'{"payload":'
            + payload
            + b"}"
            + b"\r\n--graphql"
        )

    def failed(self, errors: list[dict[str, Any]]) -> bytes:
        # A transport-level error: `payload` null, the errors beside it, then the end.
        part = orjson.dumps({"payload": None, "errors": errors})
        return b"\r\ncontent-type: application/json\r\n\r\n" + part + b"\r\n--graphql--\r\n"


async def _send_json(
    send: Send, status: int, body: Any, headers: dict[str, str] | None = None
) -> None:
    payload = orjson.dumps(body)
    raw = [(b"content-type", b"application/json"), (b"content-length", str(len(payload)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": payload})


async def _read_request(
    scope: Scope, receive: Receive, headers: Mapping[str, str], limit: int
) -> Any:
    request: OperationRequest | list[OperationRequest]
    if scope["method"] == "GET":
        request = read_get(scope["query_string"])
    elif scope["method"] == "POST":
        chunks: list[bytes] = []
        while True:
            message = await receive()
            chunks.append(message.get("body", b""))
            if sum(map(len, chunks)) > limit:
                raise HttpProblem(413, "The request body is too large")
            if not message.get("more_body"):
                break
        request = read_post(headers.get("content-type"), b"".join(chunks), batching=False)
    else:
        raise HttpProblem(405, "Use GET or POST", {"allow": "GET, POST"})
    if isinstance(request, list):
        raise HttpProblem(400, "A subscription stream answers one operation")
    return {
        "query": request.query,
        "variables": request.variables,
        "operationName": request.operation_name,
        "extensions": request.extensions,
    }


async def serve_stream(
    realtime: Realtime,
    kind: str,
    scope: Scope,
    receive: Receive,
    send: Send,
    headers: Mapping[str, str],
) -> None:
    """Answer one subscription request with a stream of events (SSE or multipart)."""
    framing = _Multipart() if kind == "multipart" else _Format()
    try:
        payload = await _read_request(
            scope, receive, headers, realtime.settings.router.max_request_bytes
        )
    except HttpProblem as problem:
        await _send_json(
            send, problem.status, {"errors": [{"message": problem.message}]}, problem.headers
        )
        return
    try:
        viewer = await realtime.service.watch.authenticate(headers.get("authorization"))
    except RedisError:
        message = "Sign-in cannot be checked right now, try again"
        await _send_json(send, 503, {"errors": [{"message": message}]})
        return
    except Unauthenticated as exc:
        await _send_json(
            send,
            401,
            {"errors": [{"message": str(exc), "extensions": {"code": "UNAUTHENTICATED"}}]},
        )
        return
    client = realtime.client_of(scope)
    refused = realtime.limits.acquire(client)
    if refused is not None:
        if viewer is not None:
            realtime.service.watch.forget(viewer)
        await _send_json(
            send, 429, {"errors": [{"message": refused, "extensions": {"code": "RATE_LIMITED"}}]}
        )
        return
    handed_over: list[Viewer] = []  # the viewer now watched for an SSE log's writer
    try:
        await _stream(
            realtime,
            framing,
            payload,
            viewer,
            receive,
            send,
            headers.get("last-event-id"),
            handed_over,
        )
    finally:
        if viewer is not None and not handed_over:
            realtime.service.watch.forget(viewer)
        realtime.limits.release(client)


async def _stream(
    realtime: Realtime,
    framing: _Format,
    payload: Any,
    viewer: Viewer | None,
    receive: Receive,
    send: Send,
    resume: str | None,
    handed_over: list[Viewer],
) -> None:
    pumping = asyncio.current_task()
    assert pumping is not None
    cut: list[str] = []  # why the stream was cut short by us: the client left or fell behind

    def stop(reason: str) -> None:
        if not cut:
            cut.append(reason)
            pumping.cancel()

    raw = [(b"content-type", framing.content_type.encode()), (b"cache-control", b"no-cache")]
    try:
        if isinstance(framing, _Multipart):
            # A write stuck behind a slow client cannot be interrupted otherwise: abort it.
            source = await realtime.start(payload, viewer, lambda: stop("slow consumer"))
            events: AsyncIterator[tuple[str | None, bytes]] = _without_ids(source)
        else:
            events = await _logged(realtime, payload, viewer, resume, handed_over)
    except SubscriptionRequestError as error:
        body = framing.opening + framing.failed(error.errors)
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": body})
        return
    watcher = asyncio.create_task(_until_disconnect(receive, lambda: stop("disconnected")))
    beats = asyncio.create_task(_heartbeat(send, framing, realtime.keepalive_seconds))
    ending = framing.closing
    try:
        await send({"type": "http.response.start", "status": 200, "headers": raw})
        await send({"type": "http.response.body", "body": framing.opening, "more_body": True})
        async for event_id, event in events:
            chunk = framing.next(event, event_id)
            await send({"type": "http.response.body", "body": chunk, "more_body": True})
    except StreamError as error:
        ending = framing.failed(error.errors)
    except (SlowConsumer, asyncio.CancelledError):
        if not cut:
            raise
        pumping.uncancel()
        return  # the connection is dropped unfinished: the client sees it end without `complete`
    finally:
        watcher.cancel()
        beats.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await beats
        await events.aclose()  # type: ignore[attr-defined]
    await send({"type": "http.response.body", "body": ending})


async def _without_ids(source: AsyncIterator[bytes]) -> AsyncIterator[tuple[str | None, bytes]]:
    try:
        async for payload in source:
            yield None, payload
    finally:
        await source.aclose()  # type: ignore[attr-defined]


async def _logged(
    realtime: Realtime,
    payload: Any,
    viewer: Viewer | None,
    resume: str | None,
    handed_over: list[Viewer],
) -> AsyncIterator[tuple[str | None, bytes]]:
    """An SSE subscription read from its log: a new one (the log is written from here) or,
    with `Last-Event-ID`, the one the client was reading, from after that event."""
    session = viewer.principal.session_id if viewer is not None else ""
    if resume:
        token, _, after = resume.partition(":")
    else:
        source = await realtime.start(payload, viewer)
        watched = viewer

        def writer_ended() -> None:
            if watched is not None:
                realtime.service.watch.forget(watched)

        token = await realtime.replay.record(source, session, writer_ended)
        if viewer is not None:
            handed_over.append(viewer)
        after = "0"
    return realtime.replay.follow(token, after or "0", session, realtime.keepalive_seconds)


async def _until_disconnect(receive: Receive, stop: Callable[[], None]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    stop()


async def _heartbeat(send: Send, framing: _Format, every: float) -> None:
    with contextlib.suppress(Exception):
        while True:
            await asyncio.sleep(every)
            await send({"type": "http.response.body", "body": framing.keepalive, "more_body": True})
