"""The router as a graphql-transport-ws client of a subgraph: one WebSocket per upstream
subscription, its upgrade request signed with the router's proof (subgraphs refuse any other),
the subscriber authenticated with its `Authorization` in `connection_init`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Mapping
from typing import Any

import aiohttp
import orjson
from yarl import URL

from core.security.router_proof import RouterSigner

PROTOCOL = "graphql-transport-ws"


class UpstreamFailure(Exception):
    """The subgraph refused or dropped the subscription; `errors` are GraphQL errors."""

    def __init__(self, subgraph: str, errors: list[dict[str, Any]]) -> None:
        super().__init__(str(errors[0].get("message")) if errors else "Subscription failed")
        self.subgraph = subgraph
        self.errors = errors


def websocket_url(url: str) -> str:
    if url.startswith("https://"):
        return "wss://" + url.removeprefix("https://")
    if url.startswith("http://"):
        return "ws://" + url.removeprefix("http://")
    return url


def _failure(subgraph: str, message: str, code: str = "SUBGRAPH_ERROR") -> UpstreamFailure:
    return UpstreamFailure(
        subgraph, [{"message": message, "extensions": {"code": code, "serviceName": subgraph}}]
    )


async def subscribe_upstream(
    session: aiohttp.ClientSession,
    subgraph: str,
    url: str,
    payload: Mapping[str, Any],
    authorization: str | None,
    *,
    signer: RouterSigner | None = None,
    ack_timeout_seconds: float = 10.0,
) -> AsyncIterator[dict[str, Any]]:
    """Each `next` payload of the subgraph's subscription until it completes; raises
    `UpstreamFailure` for an `error` message or a connection lost on the way."""
    init: dict[str, Any] = {"type": "connection_init"}
    if authorization:
        init["payload"] = {"Authorization": authorization}
    target = websocket_url(url)
    proof = signer.headers("GET", URL(target).raw_path_qs, None, {}) if signer else None
    try:
        socket = await session.ws_connect(
            target, protocols=(PROTOCOL,), heartbeat=None, autoping=True, headers=proof
        )
    except (aiohttp.ClientError, OSError) as exc:
        raise _failure(subgraph, f"Subgraph '{subgraph}' unreachable: {exc}") from None
    try:
        await socket.send_str(orjson.dumps(init).decode())
        async with asyncio.timeout(ack_timeout_seconds):
            while (message := await _receive(socket, subgraph))["type"] != "connection_ack":
                if message["type"] == "ping":
                    await socket.send_str('{"type":"pong"}')
        subscribe = {"id": "1", "type": "subscribe", "payload": dict(payload)}
        await socket.send_str(orjson.dumps(subscribe).decode())
        while True:
            message = await _receive(socket, subgraph)
            kind = message["type"]
            if kind == "next" and isinstance(message.get("payload"), dict):
                yield message["payload"]
            elif kind == "error":
                errors = message.get("payload")
                raise UpstreamFailure(subgraph, errors if isinstance(errors, list) else [])
            elif kind == "complete":
                return
            elif kind == "ping":
                await socket.send_str('{"type":"pong"}')
    except TimeoutError:
        raise _failure(subgraph, f"Subgraph '{subgraph}' did not acknowledge") from None
    finally:
        if not socket.closed:
            # Tell the subgraph to stop the resolver before closing (a clean end upstream).
            with contextlib.suppress(aiohttp.ClientError, ConnectionError, RuntimeError):
                await socket.send_str('{"id":"1","type":"complete"}')
            await socket.close()


async def _receive(socket: aiohttp.ClientWebSocketResponse, subgraph: str) -> dict[str, Any]:
    message = await socket.receive()
    if message.type in {aiohttp.WSMsgType.TEXT, aiohttp.WSMsgType.BINARY}:
        found = orjson.loads(message.data)
        if isinstance(found, dict) and isinstance(found.get("type"), str):
            return found
        raise _failure(subgraph, f"Subgraph '{subgraph}' sent an invalid message")
    code = socket.close_code
    raise _failure(subgraph, f"Subgraph '{subgraph}' closed the subscription ({code})")
