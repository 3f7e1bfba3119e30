"""Subscriptions end to end: real clients of every protocol, through two router replicas, the
real subgraphs and NATS; events caused by mutations sent through the other replica."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from router.server.app import RouterApp
from router.server.app import create_app as create_router
from subgraphs.auth.app import create_app as create_auth
from subgraphs.user.app import create_app as create_user
from tests.e2e.stack import LOGIN, PASSWORD, UPDATE_PROFILE, Member, Stack, _serve, eventually
from tests.router.subgraph_kit import free_port

pytest_plugins = ["tests.e2e.stack"]

PER_CLIENT_LIMIT = 6
BUFFER = 3
FOLLOW = "mutation Follow($id: ID!) { follow(userId: $id) { id } }"
LOGOUT = "mutation Logout($token: String!) { logout(refreshToken: $token) }"
NEW_FOLLOWER = "subscription { newFollower { followedAt node { id username profile { about } } } }"
USER_UPDATED = (
    "subscription Watch($id: ID!) { userUpdated(userId: $id) { id username profile { about } } }"
)
MEMBER_JOINED = (
    "subscription Joined($code: ID!) { territoryMemberJoined(territoryCode: $code) "
    "{ id username profile { about } } }"
)
SESSION_REVOKED = "subscription { sessionRevoked { id current } }"


@dataclass
class Replica:
    """Replica B of the whole stack: its own auth and user subgraphs and a router composing them
    (small limits, to test them); stack's router and subgraphs are replica A. Only A relays the
    outbox, so every event B delivers crossed NATS from A."""

    app: RouterApp
    url: str
    feeds: tuple[Any, Any]  # the auth and user subgraphs' NATS feeds

    @property
    def ws_url(self) -> str:
        return self.url.replace("http://", "ws://") + "/graphql"

    @property
    def listening(self) -> int:
        return int(self.feeds[0].listening + self.feeds[1].listening)


@pytest.fixture(scope="module")
async def replica(stack: Stack) -> AsyncIterator[Replica]:
    ports = {name: free_port() for name in ("auth", "user", "router")}
    settings = stack.settings.replace(
        AUTH_SUBGRAPH_URL=f"http://127.0.0.1:{ports['auth']}/graphql",
        USER_SUBGRAPH_URL=f"http://127.0.0.1:{ports['user']}/graphql",
        ROUTER_MAX_SUBSCRIPTION_CONNECTIONS_PER_CLIENT=PER_CLIENT_LIMIT,
        ROUTER_SUBSCRIPTION_BUFFER_EVENTS=BUFFER,
        ROUTER_SUBSCRIPTION_KEEPALIVE_SECONDS=0.3,
        ROUTER_SUBSCRIPTION_REVOCATION_CHECK_SECONDS=0.2,
    )
    auth = create_auth(settings, run_outbox_relay=False)
    user = create_user(settings, run_outbox_relay=False, run_consumers=False)
    router = create_router(settings)
    running: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
    try:
        running.append(await _serve(auth, ports["auth"]))
        running.append(await _serve(user, ports["user"]))
        running.append(await _serve(router, ports["router"]))
        yield Replica(
            router,
            f"http://127.0.0.1:{ports['router']}",
            (auth.state.auth_runtime.feed, user.state.user_runtime.feed),
        )
    finally:
        for server, _ in reversed(running):
            server.should_exit = True
        for _, task in reversed(running):
            await task


# -- clients -----------------------------------------------------------------------------------
class TransportWs:
    """A graphql-transport-ws client (or subscriptions-transport-ws with `legacy`)."""

    def __init__(self, socket: ClientConnection, legacy: bool) -> None:
        self.socket = socket
        self.legacy = legacy

    @classmethod
    async def open(
        cls, url: str, token: str | None = None, *, legacy: bool = False
    ) -> TransportWs:
        protocol = "graphql-ws" if legacy else "graphql-transport-ws"
        socket = await connect(url, subprotocols=[protocol])  # type: ignore[list-item]
        client = cls(socket, legacy)
        payload = {"Authorization": f"Bearer {token}"} if token else {}
        await client.send({"type": "connection_init", "payload": payload})
        assert (await client.receive())["type"] == "connection_ack"
        return client

    async def send(self, message: dict[str, Any]) -> None:
        await self.socket.send(orjson.dumps(message).decode())

    async def receive(self, within: float = 20.0) -> dict[str, Any]:
        """The next message that is not a keep-alive."""
        async with asyncio.timeout(within):
            while True:
                message: dict[str, Any] = orjson.loads(await self.socket.recv())
                if message["type"] in {"ping", "ka"}:
                    if message["type"] == "ping":
                        await self.send({"type": "pong"})
                    continue
                return message

    async def subscribe(self, id_: str, query: str, variables: dict[str, Any] | None = None) -> None:
        kind = "start" if self.legacy else "subscribe"
        payload = {"query": query, "variables": variables or {}}
        await self.send({"id": id_, "type": kind, "payload": payload})

    async def close(self) -> None:
        await self.socket.close()


async def sse_events(
    http: httpx.AsyncClient, url: str, body: dict[str, Any], token: str | None
) -> AsyncIterator[tuple[str, Any]]:
    headers = {"accept": "text/event-stream"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    async with http.stream("POST", f"{url}/graphql", json=body, headers=headers) as response:
        assert response.status_code == 200, await response.aread()
        assert response.headers["content-type"].startswith("text/event-stream")
        event = ""
        async for line in response.aiter_lines():
            if line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data:"):
                data = line.removeprefix("data:").strip()
                yield event, orjson.loads(data) if data else None
                if event == "complete":
                    return


async def multipart_parts(
    http: httpx.AsyncClient, url: str, body: dict[str, Any], token: str | None
) -> AsyncIterator[dict[str, Any]]:
    headers = {"accept": 'multipart/mixed;subscriptionSpec="1.0", application/json'}
    if token:
        headers["authorization"] = f"Bearer {token}"
    async with http.stream("POST", f"{url}/graphql", json=body, headers=headers) as response:
        assert response.status_code == 200
        assert "subscriptionSpec" in response.headers["content-type"]
        buffer = b""
        async for chunk in response.aiter_bytes():
            buffer += chunk
            while True:
                head, sep, rest = buffer.partition(b"\r\n--graphql")
                if not sep:
                    break
                buffer = rest
                _, _, json_part = head.partition(b"\r\n\r\n")
                if json_part.strip():
                    part: dict[str, Any] = orjson.loads(json_part)
                    if part:  # `{}` is a heartbeat
                        yield part
            if buffer.startswith(b"--"):
                return


async def login(stack: Stack, member: Member) -> tuple[str, str]:
    body = await stack.graphql(
        LOGIN,
        {"input": {"username": member.username, "password": PASSWORD}},
    )
    assert not body.get("errors"), body
    return body["data"]["login"]["accessToken"], body["data"]["login"]["refreshToken"]


async def upstreams_open(replica: Replica, count: int) -> None:
    await eventually(
        lambda: _true(replica.app.realtime.service.hub.upstream_count == count),
        what=f"{count} upstream subscriptions",
    )


async def listening(replica: Replica, count: int) -> None:
    """Until B's subgraph resolvers listen on NATS (an event published before is not seen)."""
    await eventually(lambda: _true(replica.listening == count), what=f"{count} NATS listeners")


async def _true(value: bool) -> bool:
    return value


# -- tests -------------------------------------------------------------------------------------
async def test_graphql_transport_ws_new_follower_with_fields_of_both_subgraphs(
    stack: Stack, replica: Replica
) -> None:
    star, fan = await stack.register(), await stack.register()
    await stack.graphql(UPDATE_PROFILE, {"input": {"about": "fan here"}}, token=fan.access_token)
    client = await TransportWs.open(replica.ws_url, star.access_token)
    try:
        await client.subscribe("1", NEW_FOLLOWER)
        await listening(replica, 1)
        # Through router replica A.
        await stack.graphql(FOLLOW, {"id": star.id}, token=fan.access_token)
        message = await client.receive()
        assert message["type"] == "next" and message["id"] == "1"
        node = message["payload"]["data"]["newFollower"]["node"]
        assert node == {"id": fan.id, "username": fan.username, "profile": {"about": "fan here"}}
    finally:
        await client.close()
    await upstreams_open(replica, 0)
    await listening(replica, 0)
