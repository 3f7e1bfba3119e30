"""GraphQL over HTTP: GET and POST, opt-in batches, multipart uploads and `@defer` over
`multipart/mixed`. Reads the request, runs each operation through the pipeline and writes the
outcome with the status `status_of` gives."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import replace
from typing import Any

import orjson

from core.config import Settings
from router.edge.guard import Edge
from router.edge.http_rules import check_csrf
from router.edge.uploads import read_multipart
from router.pipeline.inflight import response_bytes
from router.pipeline.outcome import RETRY_AFTER_SECONDS, Answered, Deferred, Outcome, Refused
from router.pipeline.pipeline import Call, Door, OperationPipeline
from router.pipeline.request import OperationRequest
from router.protocols.http import (
    HttpProblem,
    answered_status,
    http_operation,
    negotiate,
    read_get,
    read_post,
    status_of,
)
from router.protocols.multipart import accepts_incremental, send_incremental

Scope = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[MutableMapping[str, Any]]]
Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


class GraphQLOverHttp:
    """The HTTP door of `/graphql` (streamed subscriptions have their own, `streams.py`)."""

    def __init__(self, settings: Settings, pipeline: OperationPipeline, edge: Edge) -> None:
        self.settings = settings
        self.pipeline = pipeline
        self.edge = edge

    async def __call__(
        self, scope: Scope, receive: Receive, send: Send, headers: dict[str, str]
    ) -> None:
        method = scope["method"]
        try:
            media_type = negotiate(headers.get("accept"))
            requests, uploads = await self._read_requests(scope, receive, headers)
        except HttpProblem as problem:
            await send_body(
                send, problem.status, problem.body(), "application/json", problem.headers
            )
            return
        try:
            principal = await self.pipeline.authenticate(headers.get("authorization"))
        except Refused as refused:
            await send_refused(send, refused, media_type)
            return
        call = Call(
            Door.HTTP,
            method,
            headers,
            self.edge.forwarded(headers, scope.get("client")),
            principal,
            uploads=uploads,
        )
        if isinstance(requests, list):
            outcomes = await asyncio.gather(*(self.pipeline.run(r, call) for r in requests))
            payload = b"[" + b",".join(_batch_item(o) for o in outcomes) + b"]"
            await send_body(send, 200, payload, media_type)
            return
        incremental = accepts_incremental(headers.get("accept"))
        outcome = await self.pipeline.run(requests, replace(call, incremental=incremental))
        if isinstance(outcome, Refused):
            await send_refused(send, outcome, media_type)
        elif isinstance(outcome, Deferred):
            await send_incremental(send, outcome.incremental.payloads())
        elif isinstance(outcome, Answered):
            status = answered_status(outcome.response)
            retry = {"retry-after": str(RETRY_AFTER_SECONDS)} if status == 503 else None
            await send_body(send, status, response_bytes(outcome.response), media_type, retry)
        else:  # the pipeline streams only on streaming doors
            raise TypeError(f"unexpected outcome on HTTP: {type(outcome).__name__}")

    async def _read_requests(
        self, scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[list[OperationRequest] | OperationRequest, bool]:
        """The request's operation(s), and whether it carries uploaded files."""
        method = scope["method"]
        router = self.settings.router
        if method not in {"GET", "POST"}:
            raise HttpProblem(405, "Use GET or POST", {"allow": "GET, POST"})
        content_type = headers.get("content-type", "")
        multipart = method == "POST" and content_type.lower().startswith("multipart/form-data")
        # A POST of another simple content type is refused below (415) whatever its headers.
        if self.edge.csrf_prevention and (method == "GET" or multipart):
            try:
                check_csrf(method, headers)
            except HttpProblem:
                self.edge.refused("csrf")
                raise
        if method == "GET":
            return read_get(scope["query_string"]), False
        if multipart:
            body = await read_body(receive, router.max_upload_bytes)
            return http_operation(read_multipart(content_type, body)), True
        body = await read_body(receive, router.max_request_bytes)
        return read_post(content_type, body, batching=router.batch_requests), False


def _batch_item(outcome: Outcome) -> bytes:
    if isinstance(outcome, Refused):
        return orjson.dumps({"errors": outcome.errors})
    if isinstance(outcome, Answered):
        return response_bytes(outcome.response)
    raise TypeError(f"unexpected outcome in a batch: {type(outcome).__name__}")


async def send_refused(send: Send, refused: Refused, media_type: str) -> None:
    body = orjson.dumps({"errors": refused.errors})
    await send_body(send, status_of(refused, media_type), body, media_type, refused.headers)


async def read_body(receive: Receive, limit: int) -> bytes:
    """The whole request body; 413 as soon as it passes `limit` bytes."""
    chunks: list[bytes] = []
    size = 0
    while True:
        message = await receive()
        chunk = message.get("body", b"")
        size += len(chunk)
        if size > limit:
            raise HttpProblem(413, "The request body is too large")
        chunks.append(chunk)
        if not message.get("more_body"):
            return b"".join(chunks)


async def send_body(
    send: Send, status: int, body: bytes, content_type: str, headers: dict[str, str] | None = None
) -> None:
    raw = [(b"content-type", content_type.encode()), (b"content-length", str(len(body)).encode())]
    raw += [(k.encode(), v.encode()) for k, v in (headers or {}).items()]
    await send({"type": "http.response.start", "status": status, "headers": raw})
    await send({"type": "http.response.body", "body": body})
