"""Operations answered as a stream over one HTTP response: GraphQL over SSE (graphql-sse,
distinct connections mode; any operation type) and Apollo's multipart HTTP subscriptions
(`multipart/mixed;subscriptionSpec=1.0`). A query or mutation is one `next`, then the end."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping, MutableMapping
from dataclasses import replace
from typing import Any

import orjson

from router.pipeline.inflight import response_bytes
from router.pipeline.outcome import Answered, Outcome, Refused, Stage, Streaming
from router.pipeline.pipeline import Call, Door, forwarded_with
from router.pipeline.request import OperationRequest
from router.protocols.graphql_http import read_body, send_body
from router.protocols.http import HttpProblem, read_get, read_post
from router.protocols.realtime import Realtime
from router.subscriptions import SlowConsumer, StreamError, Viewer

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


async def _read_request(
    scope: Scope, receive: Receive, headers: Mapping[str, str], limit: int
) -> OperationRequest:
    request: OperationRequest | list[OperationRequest]
    if scope["method"] == "GET":
        request = read_get(scope["query_string"])
    elif scope["method"] == "POST":
        body = await read_body(receive, limit)
        request = read_post(headers.get("content-type"), body, batching=False)
    else:
        raise HttpProblem(405, "Use GET or POST", {"allow": "GET, POST"})
    if isinstance(request, list):
        raise HttpProblem(400, "A stream answers one operation")
    return request


# Refusals answered before any stream starts, with their own HTTP status; the others are the
# stream's only event (graphql-sse's graceful reporting, so EventSource clients see them).
_BEFORE_STREAM = {Stage.REQUEST: 400, Stage.METHOD: 405, Stage.UNAVAILABLE: 503}


async def serve_stream(
    realtime: Realtime,
    kind: str,
    scope: Scope,
    receive: Receive,
    send: Send,
    headers: Mapping[str, str],
) -> None:
    """Answer one request with a stream of results (SSE or multipart)."""
    framing = _Multipart() if kind == "multipart" else _Format()
    pipeline = realtime.pipeline
    try:
        request = await _read_request(
            scope, receive, headers, realtime.settings.router.max_request_bytes
        )
    except HttpProblem as problem:
        await send_body(send, problem.status, problem.body(), "application/json", problem.headers)
        return
    try:
        viewer = await pipeline.watch(headers.get("authorization"))
    except Refused as refused:
        status = 401 if refused.stage is Stage.AUTHENTICATION else 503
        await send_body(send, status, orjson.dumps({"errors": refused.errors}), "application/json")
        return
    client = realtime.client_of(scope)
    refused_connection = realtime.limits.acquire(client)
    if refused_connection is not None:
        pipeline.forget(viewer)
        errors = [{"message": refused_connection, "extensions": {"code": "RATE_LIMITED"}}]
        await send_body(send, 429, orjson.dumps({"errors": errors}), "application/json")
        return
    forwarded = realtime.pipeline.edge.forwarded(headers, scope.get("client"))
    call = Call(
        Door.MULTIPART if kind == "multipart" else Door.SSE,
        scope["method"],
        headers,
        forwarded_with(forwarded, viewer.authorization if viewer is not None else None),
        viewer.principal if viewer is not None else None,
        viewer=viewer,
    )
    handed_over: list[Viewer] = []  # the viewer now watched for an SSE log's writer
    try:
        await _stream(
            realtime,
            framing,
            request,
            call,
            receive,
            send,
            headers.get("last-event-id"),
            handed_over,
        )
    finally:
        if not handed_over:
            pipeline.forget(viewer)
        realtime.limits.release(client)


async def _stream(
    realtime: Realtime,
    framing: _Format,
    request: OperationRequest,
    call: Call,
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
    events: AsyncIterator[tuple[str | None, bytes]]
    if resume and not isinstance(framing, _Multipart):
        events = _resumed(realtime, call.viewer, resume)
    else:
        # A write stuck behind a slow client cannot be interrupted otherwise: abort it.
        outcome = await realtime.pipeline.run(
            request, replace(call, on_overflow=lambda: stop("slow consumer"))
        )
        if isinstance(outcome, Refused):
            status = _BEFORE_STREAM.get(outcome.stage)
            if status is not None:
                body = orjson.dumps({"errors": outcome.errors})
                await send_body(send, status, body, "application/json", outcome.headers)
                return
            await send({"type": "http.response.start", "status": 200, "headers": raw})
            await send(
                {
                    "type": "http.response.body",
                    "body": framing.opening + framing.failed(outcome.errors),
                }
            )
            return
        events = await _events(realtime, framing, outcome, call.viewer, handed_over)
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


async def _events(
    realtime: Realtime,
    framing: _Format,
    outcome: Outcome,
    viewer: Viewer | None,
    handed_over: list[Viewer],
) -> AsyncIterator[tuple[str | None, bytes]]:
    """The events of an outcome: one for a result; a subscription's, read from its SSE log
    when SSE resumption is on (the log is written from here), else directly."""
    if isinstance(outcome, Answered):
        return _one(response_bytes(outcome.response))
    if not isinstance(outcome, Streaming):
        raise TypeError(f"unexpected outcome on a stream: {type(outcome).__name__}")
    if isinstance(framing, _Multipart) or realtime.replay is None:
        return _without_ids(outcome.events)
    session = viewer.principal.session_id if viewer is not None else ""
    watched = viewer

    def writer_ended() -> None:
        realtime.pipeline.forget(watched)

    token = await realtime.replay.record(outcome.events, session, writer_ended)
    if viewer is not None:
        handed_over.append(viewer)
    return realtime.replay.follow(token, "0", session, realtime.keepalive_seconds)


def _resumed(
    realtime: Realtime, viewer: Viewer | None, resume: str
) -> AsyncIterator[tuple[str | None, bytes]]:
    """The SSE subscription the client was reading, from after its `Last-Event-ID`."""
    if realtime.replay is None:
        return _not_resumable()
    session = viewer.principal.session_id if viewer is not None else ""
    token, _, after = resume.partition(":")
    return realtime.replay.follow(token, after or "0", session, realtime.keepalive_seconds)


async def _not_resumable() -> AsyncIterator[tuple[str | None, bytes]]:
    raise StreamError(
        [
            {
                "message": "This router keeps no stream logs (no Redis): start the stream again",
                "extensions": {"code": "STREAM_NOT_RESUMABLE"},
            }
        ]
    )
    yield  # an async generator that raises at once


async def _one(payload: bytes) -> AsyncIterator[tuple[str | None, bytes]]:
    yield None, payload


async def _without_ids(source: AsyncIterator[bytes]) -> AsyncIterator[tuple[str | None, bytes]]:
    try:
        async for payload in source:
            yield None, payload
    finally:
        await source.aclose()  # type: ignore[attr-defined]


async def _until_disconnect(receive: Receive, stop: Callable[[], None]) -> None:
    while (await receive())["type"] != "http.disconnect":
        pass
    stop()


async def _heartbeat(send: Send, framing: _Format, every: float) -> None:
    with contextlib.suppress(Exception):
        while True:
            await asyncio.sleep(every)
            await send({"type": "http.response.body", "body": framing.keepalive, "more_body": True})
