"""Incremental delivery over `multipart/mixed` (`deferSpec=20220824`, as Apollo Client and
graphql-http clients read it): one JSON part per payload, the closing boundary after the last."""

from __future__ import annotations

from collections.abc import AsyncIterator, Awaitable, Callable, MutableMapping
from typing import Any

import orjson

INCREMENTAL_CONTENT_TYPE = 'multipart/mixed; boundary="-"; deferSpec=20220824'
_PART = b"\r\n---\r\ncontent-type: application/json; charset=utf-8\r\n\r\n"
_END = b"\r\n-----\r\n"

Send = Callable[[MutableMapping[str, Any]], Awaitable[None]]


def accepts_incremental(accept: str | None) -> bool:
    """Whether the client reads `@defer` payloads as multipart (subscriptions ask with
    `subscriptionSpec` and are served elsewhere)."""
    if not accept or "multipart/mixed" not in accept:
        return False
    return "subscriptionspec" not in accept.lower()


def part(payload: dict[str, Any]) -> bytes:
    return _PART + orjson.dumps(payload)


async def send_incremental(send: Send, payloads: AsyncIterator[dict[str, Any]]) -> None:
    """Stream every payload as it is produced, then the closing boundary."""
    await send(
        {
            "type": "http.response.start",
            "status": 200,
            "headers": [
                (b"content-type", INCREMENTAL_CONTENT_TYPE.encode()),
                (b"cache-control", b"no-cache"),
            ],
        }
    )
    async for payload in payloads:
        await send({"type": "http.response.body", "body": part(payload), "more_body": True})
    await send({"type": "http.response.body", "body": _END, "more_body": False})
