"""How `unityplan serve` has uvicorn serve a service: WebSocket compression as configured."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
import uvicorn
from websockets.asyncio.client import connect

from core.config import load_settings
from unityplan.cli.serve import server_config
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
