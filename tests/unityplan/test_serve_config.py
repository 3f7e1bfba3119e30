"""How `unityplan serve` runs a service: WebSocket compression as configured, and start-up's
objects frozen out of the garbage collector's full collections."""

from __future__ import annotations

import asyncio
import gc
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect

from core.config import load_settings
from unityplan.cli.serve import StartupWatch, server_config
from unityplan.devstack import free_port


async def _echo(scope: dict[str, Any], receive: Any, send: Any) -> None:
    if scope["type"] == "lifespan":
        while (message := await receive())["type"] != "lifespan.shutdown":
            await send({"type": "lifespan.startup.complete"})
        await send({"type": "lifespan.shutdown.complete"})
        return
    assert scope["type"] == "websocket"
    await receive()  # websocket.connect
    await send({"type": "websocket.accept"})
    message = await receive()
    await send({"type": "websocket.send", "text": message.get("text")})
    await send({"type": "websocket.close"})


@pytest.mark.parametrize(("setting", "compressed"), [(None, False), ("true", True)])
async def test_client_websockets_are_compressed_only_when_configured(
    setting: str | None, compressed: bool
) -> None:
    environment = {"ROUTER_WEBSOCKET_COMPRESSION": setting} if setting else {}
    port = free_port()
    server = uvicorn.Server(server_config(_echo, load_settings(environment), "127.0.0.1", port))
    serving = asyncio.create_task(server.serve())
    try:
        for _ in range(250):
            if server.started:
                break
            await asyncio.sleep(0.02)
        assert server.started
        # The client offers permessage-deflate, as browsers do.
        async with connect(f"ws://127.0.0.1:{port}/", compression="deflate") as socket:
            offered = socket.response.headers.get("Sec-WebSocket-Extensions") or ""
            await socket.send("hello")
            assert await socket.recv() == "hello"
        assert ("permessage-deflate" in offered) is compressed
    finally:
        server.should_exit = True
        await asyncio.wait_for(serving, 10)


async def test_what_start_up_built_is_kept_out_of_full_collections() -> None:
    """Once the app's start-up completed, the objects it built are frozen (gc.freeze), and
    young objects are collected less often than Python's default."""
    gc.unfreeze()
    assert gc.get_freeze_count() == 0
    thresholds = gc.get_threshold()
    messages = iter([{"type": "lifespan.startup"}, {"type": "lifespan.shutdown"}])
    sent: list[dict[str, Any]] = []

    async def receive() -> dict[str, Any]:
        return next(messages)

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)

    try:
        await StartupWatch(_echo)({"type": "lifespan"}, receive, send)
        assert [m["type"] for m in sent] == [
            "lifespan.startup.complete",
            "lifespan.shutdown.complete",
        ]
        assert gc.get_freeze_count() > 0
        young, middle, full = gc.get_threshold()
        assert (young, middle) == (10_000, 20)
        assert full == thresholds[2]
    finally:
        gc.unfreeze()
        gc.set_threshold(*thresholds)
