"""Subscriptions end to end: real clients of every protocol, through two router replicas, the
real subgraphs and NATS; events caused by mutations sent through the other replica."""

from __future__ import annotations

import asyncio
import shutil
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
import uvicorn
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from core.events.timing import HOPS
from core.security import KeyRing, access_token_claims
from router.server.app import RouterApp
from router.server.app import create_app as create_router
from subgraphs.auth.app import create_app as create_auth
from subgraphs.user.app import create_app as create_user
from tests.e2e.stack import LOGIN, PASSWORD, UPDATE_PROFILE, Member, Stack, _serve, eventually
from tests.router.subgraph_kit import free_port
from unityplan.registry import router_settings, subgraph_urls

pytest_plugins = ["tests.e2e.stack"]

PER_CLIENT_LIMIT = 6
PER_CONNECTION_LIMIT = 3
SSE_RETENTION = 3.0
BUFFER = 3
FOLLOW = "mutation Follow($id: ID!) { follow(userId: $id) { id } }"
LOGOUT = "mutation Logout($token: String!) { logout(refreshToken: $token) }"
NEW_FOLLOWER = "subscription { newFollower { followedAt node { id username profile { about } } } }"
USER_UPDATED = (
    "subscription Watch($id: ID!) "
    "{ userUpdated(userId: $id) { id username profile { about visibility } } }"
)
USER_UPDATED_VISIBILITY = (
    "subscription Own($id: ID!) { userUpdated(userId: $id) { profile { about visibility } } }"
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
        # The replica's router reads the keys of the replica's auth subgraph.
        ROUTER_JWKS_URL="",
        AUTH_SUBGRAPH_URL=f"http://127.0.0.1:{ports['auth']}/graphql",
        USER_SUBGRAPH_URL=f"http://127.0.0.1:{ports['user']}/graphql",
        USER_PORT=ports["user"],
        ROUTER_MAX_SUBSCRIPTION_CONNECTIONS_PER_CLIENT=PER_CLIENT_LIMIT,
        ROUTER_SUBSCRIPTION_BUFFER_EVENTS=BUFFER,
        ROUTER_SUBSCRIPTION_KEEPALIVE_SECONDS=0.3,
        ROUTER_SUBSCRIPTION_REVOCATION_CHECK_SECONDS=0.2,
        ROUTER_MAX_SUBSCRIPTIONS_PER_CONNECTION=PER_CONNECTION_LIMIT,
        # A dropped SSE stream stays resumable (its upstream open) this long.
        ROUTER_SSE_RETENTION_SECONDS=SSE_RETENTION,
    )
    auth = create_auth(settings, run_outbox_relay=False)
    user = create_user(settings, run_outbox_relay=False, run_consumers=False)
    router = create_router(router_settings(settings), subgraph_urls(settings))
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
    async def open(cls, url: str, token: str | None = None, *, legacy: bool = False) -> TransportWs:
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

    async def subscribe(
        self, id_: str, query: str, variables: dict[str, Any] | None = None
    ) -> None:
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
        assert message["type"] == "next"
        assert message["id"] == "1"
        node = message["payload"]["data"]["newFollower"]["node"]
        assert node == {"id": fan.id, "username": fan.username, "profile": {"about": "fan here"}}
    finally:
        await client.close()
    await upstreams_open(replica, 0)
    await listening(replica, 0)


async def test_each_event_carries_its_time_at_every_hop_in_order(
    stack: Stack, replica: Replica
) -> None:
    star, fan = await stack.register(), await stack.register()
    client = await TransportWs.open(replica.ws_url, star.access_token)
    try:
        await client.subscribe("1", NEW_FOLLOWER)
        await listening(replica, 1)
        before = time.time() * 1000
        await stack.graphql(FOLLOW, {"id": star.id}, token=fan.access_token)
        message = await client.receive()
        read = time.time() * 1000
    finally:
        await client.close()
    assert message["type"] == "next"
    timing = message["payload"]["extensions"]["eventTiming"]
    # Written in the follow's transaction, published by the relay, received and answered by
    # the user subgraph, read and answered by the router: every hop, in that order.
    assert list(timing) == list(HOPS)
    moments = [timing[hop] for hop in HOPS]
    assert moments == sorted(moments)
    assert before <= moments[0]
    assert moments[-1] <= read


async def test_legacy_graphql_ws_user_updated_follows_privacy_mid_stream(
    stack: Stack, replica: Replica
) -> None:
    owner, viewer = await stack.register(), await stack.register()
    watcher = await TransportWs.open(replica.ws_url, viewer.access_token, legacy=True)
    itself = await TransportWs.open(replica.ws_url, owner.access_token)
    try:
        await watcher.subscribe("w", USER_UPDATED, {"id": owner.id})
        await itself.subscribe("o", USER_UPDATED_VISIBILITY, {"id": owner.id})
        await listening(replica, 2)

        async def update(about: str | None = None, visibility: str | None = None) -> None:
            fields: dict[str, Any] = {"about": about} if about else {"visibility": visibility}
            body = await stack.graphql(UPDATE_PROFILE, {"input": fields}, token=owner.access_token)
            assert not body.get("errors"), body

        async def owner_sees(about: str, visibility: str) -> None:
            # The owner sees every change: once theirs arrived, the viewer's was decided too.
            while True:
                message = await itself.receive()
                assert message["type"] == "next", message
                profile = message["payload"]["data"]["userUpdated"]["profile"]
                if profile == {"about": about, "visibility": visibility}:
                    return

        async def viewer_receives() -> tuple[str, str]:
            message = await watcher.receive()
            assert message["type"] == "data", message
            assert message["id"] == "w"
            user = message["payload"]["data"]["userUpdated"]
            assert user["username"] == owner.username
            return user["profile"]["about"], user["profile"]["visibility"]

        await update("one")
        await owner_sees("one", "PUBLIC")
        assert await viewer_receives() == ("one", "PUBLIC")
        await update(visibility="PRIVATE")
        await owner_sees("one", "PRIVATE")
        await update("secret")
        await owner_sees("secret", "PRIVATE")
        await update(visibility="PUBLIC")
        await owner_sees("secret", "PUBLIC")
        # Visibility is decided when the subgraph handles each event: nothing reached the viewer
        # while the profile was private. An event of the private period handled only after the
        # change back shows the profile as it is then, public with "secret"; so does the change.
        assert await viewer_receives() == ("secret", "PUBLIC")
        await update("three")
        seen = [await viewer_receives()]
        while seen[-1] != ("three", "PUBLIC"):
            seen.append(await viewer_receives())
        assert set(seen) <= {("secret", "PUBLIC"), ("three", "PUBLIC")}
    finally:
        await watcher.close()
        await itself.close()
    await listening(replica, 0)


async def test_sse_territory_member_joined(stack: Stack, replica: Replica) -> None:
    member = await stack.register()
    body = {"query": MEMBER_JOINED, "variables": {"code": stack.territory.code}}
    received: list[dict[str, Any]] = []

    async def read() -> None:
        async for event, data in sse_events(stack.http, replica.url, body, member.access_token):
            assert event == "next", (event, data)
            received.append(data["data"]["territoryMemberJoined"])

    reader = asyncio.create_task(read())
    await listening(replica, 1)
    newcomer = await stack.register()
    # Earlier registrations may still be on their way from the outbox: wait for this one.
    await eventually(
        lambda: _true(any(user["id"] == newcomer.id for user in received)), what="the newcomer"
    )
    reader.cancel()
    joined = next(user for user in received if user["id"] == newcomer.id)
    assert joined["username"] == newcomer.username
    assert "profile" in joined
    await listening(replica, 0)


async def test_multipart_session_revoked_of_another_session(stack: Stack, replica: Replica) -> None:
    member = await stack.register()
    _, other_refresh = await login(stack, member)
    body = {"query": SESSION_REVOKED}
    received: list[dict[str, Any]] = []

    async def read() -> None:
        async for part in multipart_parts(stack.http, replica.url, body, member.access_token):
            received.append(part)
            return

    reader = asyncio.create_task(read())
    await listening(replica, 1)
    answer = await stack.graphql(LOGOUT, {"token": other_refresh})
    assert answer["data"]["logout"] is True, answer
    async with asyncio.timeout(20):
        await reader
    revoked = received[0]["payload"]["data"]["sessionRevoked"]
    assert revoked["current"] is False
    assert revoked["id"]
    await listening(replica, 0)


async def test_subscriptions_needing_a_viewer_are_refused(stack: Stack, replica: Replica) -> None:
    anonymous = await TransportWs.open(replica.ws_url)
    try:
        await anonymous.subscribe("1", NEW_FOLLOWER)
        message = await anonymous.receive()
        errors = message["payload"] if message["type"] == "error" else message["payload"]["errors"]
        assert errors[0]["extensions"]["code"] == "UNAUTHENTICATED", message
    finally:
        await anonymous.close()
    # A bad token is refused at connection_init with the protocol's Forbidden close.
    socket = await connect(replica.ws_url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
    await socket.send(
        orjson.dumps(
            {"type": "connection_init", "payload": {"Authorization": "Bearer nope"}}
        ).decode()
    )
    with pytest.raises(ConnectionClosed) as closed:
        await asyncio.wait_for(socket.recv(), 10)
    assert closed.value.rcvd is not None
    assert closed.value.rcvd.code == 4403
    # Over SSE: 401 for a bad token, and the subgraph's UNAUTHENTICATED error when anonymous.
    response = await stack.http.post(
        f"{replica.url}/graphql",
        json={"query": NEW_FOLLOWER},
        headers={"accept": "text/event-stream", "authorization": "Bearer nope"},
    )
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    events = [e async for e in sse_events(stack.http, replica.url, {"query": NEW_FOLLOWER}, None)]
    assert events[0][0] == "next"
    assert events[0][1]["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert events[-1][0] == "complete"
    await upstreams_open(replica, 0)


async def test_revoking_the_session_ends_its_subscriptions_within_a_second(
    stack: Stack, replica: Replica
) -> None:
    member = await stack.register()
    client = await TransportWs.open(replica.ws_url, member.access_token)
    try:
        await client.subscribe("1", NEW_FOLLOWER)
        await listening(replica, 1)
        answer = await stack.graphql(LOGOUT, {"token": member.refresh_token})
        assert answer["data"]["logout"] is True, answer
        revoked_at = time.monotonic()
        message = await client.receive()
        assert time.monotonic() - revoked_at < 1.0
        assert message["type"] == "error", message
        assert message["id"] == "1"
        assert message["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    finally:
        await client.close()
    await listening(replica, 0)


async def test_identical_subscriptions_share_one_upstream(stack: Stack, replica: Replica) -> None:
    owner, viewer, other = await stack.register(), await stack.register(), await stack.register()
    tabs = [await TransportWs.open(replica.ws_url, viewer.access_token) for _ in range(2)]
    stranger = await TransportWs.open(replica.ws_url, other.access_token)
    try:
        for tab in tabs:
            await tab.subscribe("same", USER_UPDATED, {"id": owner.id})
        await listening(replica, 1)
        assert replica.app.realtime.service.hub.upstream_count == 1
        # Another user's subscription is authorized for them: an upstream of its own.
        await stranger.subscribe("s", USER_UPDATED, {"id": owner.id})
        await listening(replica, 2)
        assert replica.app.realtime.service.hub.upstream_count == 2
        await stack.graphql(
            UPDATE_PROFILE, {"input": {"about": "hi all"}}, token=owner.access_token
        )
        for client in (*tabs, stranger):
            message = await client.receive()
            assert message["payload"]["data"]["userUpdated"]["profile"]["about"] == "hi all"
    finally:
        for client in (*tabs, stranger):
            await client.close()
    await listening(replica, 0)


async def test_connection_limit_per_client(stack: Stack, replica: Replica) -> None:
    del stack
    sockets = [
        await connect(replica.ws_url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        for _ in range(PER_CLIENT_LIMIT)
    ]
    try:
        extra = await connect(replica.ws_url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        with pytest.raises(ConnectionClosed) as closed:
            await asyncio.wait_for(extra.recv(), 10)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 1013
        async with httpx.AsyncClient(timeout=10) as http:
            response = await http.post(
                f"{replica.url}/graphql",
                json={"query": NEW_FOLLOWER},
                headers={"accept": "text/event-stream"},
            )
        assert response.status_code == 429
    finally:
        for socket in sockets:
            await socket.close()
    await eventually(
        lambda: _true(replica.app.realtime.limits.open == 0), what="connections closed"
    )


async def test_a_slow_consumer_is_cut_off_without_affecting_others(
    stack: Stack, replica: Replica
) -> None:
    owner, viewer = await stack.register(), await stack.register()
    # A client that stops reading: its socket writes never finish (an ASGI `send` that blocks).
    inbox: asyncio.Queue[dict[str, Any]] = asyncio.Queue()
    for message in (
        {"type": "connection_init", "payload": {"Authorization": f"Bearer {viewer.access_token}"}},
        {
            "id": "slow",
            "type": "subscribe",
            "payload": {"query": USER_UPDATED, "variables": {"id": owner.id}},
        },
    ):
        await inbox.put({"type": "websocket.receive", "text": orjson.dumps(message).decode()})
    sent: list[dict[str, Any]] = []
    stuck = asyncio.Event()

    async def receive() -> dict[str, Any]:
        if not sent:
            sent.append({"type": "connecting"})
            return {"type": "websocket.connect"}
        return await inbox.get()

    async def send(message: dict[str, Any]) -> None:
        sent.append(message)
        if message["type"] == "websocket.send" and '"next"' in message["text"]:
            stuck.set()
            await asyncio.Event().wait()  # never drains

    scope = {
        "type": "websocket",
        "path": "/graphql",
        "headers": [],
        "subprotocols": ["graphql-transport-ws"],
        "client": ("10.77.0.1", 5000),
    }
    slow = asyncio.create_task(replica.app(scope, receive, send))  # type: ignore[arg-type]
    # A healthy client of the same session shares the upstream with the slow one.
    healthy = await TransportWs.open(replica.ws_url, viewer.access_token)
    try:
        await healthy.subscribe("ok", USER_UPDATED, {"id": owner.id})
        await listening(replica, 1)
        assert replica.app.realtime.service.hub.upstream_count == 1
        for n in range(BUFFER + 2):
            about = f"event {n}"
            await stack.graphql(
                UPDATE_PROFILE, {"input": {"about": about}}, token=owner.access_token
            )
            message = await healthy.receive()
            assert message["payload"]["data"]["userUpdated"]["profile"]["about"] == about
        assert stuck.is_set()
        async with asyncio.timeout(10):
            await slow
        closes = [m for m in sent if m["type"] == "websocket.close"]
        assert closes == [{"type": "websocket.close", "code": 4413, "reason": closes[0]["reason"]}]
        assert "slow" in closes[0]["reason"].lower()
        # The healthy client goes on receiving.
        await stack.graphql(UPDATE_PROFILE, {"input": {"about": "after"}}, token=owner.access_token)
        message = await healthy.receive()
        assert message["payload"]["data"]["userUpdated"]["profile"]["about"] == "after"
    finally:
        slow.cancel()
        await healthy.close()
    await listening(replica, 0)


def _short_lived(stack: Stack, member: Member, seconds: int) -> tuple[str, float]:
    """An access token of the member's session that expires in `seconds`, and when."""
    keyring = KeyRing.from_settings(stack.settings)
    claims = keyring.verify(member.access_token)
    token = keyring.sign(
        access_token_claims(
            user_id=claims["user_id"],
            username=claims["username"],
            territory_code=claims["territory_code"],
            session_id=claims["sid"],
            roles=claims.get("roles", []),
        ),
        ttl_seconds=seconds,
    )
    return token, float(keyring.verify(token)["exp"])


async def test_an_expiring_token_ends_subscriptions_unless_refreshed_by_ping(
    stack: Stack, replica: Replica
) -> None:
    member, fan = await stack.register(), await stack.register()
    short, expires_at = _short_lived(stack, member, 2)
    expiring = await TransportWs.open(replica.ws_url, short)
    renewed = await TransportWs.open(replica.ws_url, short, legacy=False)
    try:
        await expiring.subscribe("e", NEW_FOLLOWER)
        await renewed.subscribe("r", NEW_FOLLOWER)
        # A ping carrying a fresh token of the same user keeps the connection's streams open.
        await renewed.send(
            {"type": "ping", "payload": {"Authorization": f"Bearer {member.access_token}"}}
        )
        assert (await renewed.receive())["type"] == "pong"
        message = await expiring.receive()
        assert time.time() >= expires_at - 1
        assert message["type"] == "error", message
        assert message["payload"][0]["extensions"]["code"] == "UNAUTHENTICATED"
        assert "expired" in message["payload"][0]["message"]
        await listening(replica, 1)
        await stack.graphql(FOLLOW, {"id": member.id}, token=fan.access_token)
        message = await renewed.receive()
        assert message["type"] == "next", message
        assert message["payload"]["data"]["newFollower"]["node"]["id"] == fan.id
    finally:
        await expiring.close()
        await renewed.close()
    await listening(replica, 0)


async def test_shutting_down_completes_every_subscription_cleanly(
    stack: Stack, replica: Replica
) -> None:
    member = await stack.register()
    client = await TransportWs.open(replica.ws_url, member.access_token)
    events: list[str] = []

    async def read_sse() -> None:
        body = {"query": NEW_FOLLOWER}
        async for event, _ in sse_events(stack.http, replica.url, body, member.access_token):
            events.append(event)

    try:
        await client.subscribe("1", NEW_FOLLOWER)
        reader = asyncio.create_task(read_sse())
        await listening(replica, 1)  # the same session's identical subscriptions share it
        hub = replica.app.realtime.service.hub
        await eventually(lambda: _true(hub.client_count == 2), what="both clients")
        await replica.app.realtime.drain()  # what SIGTERM starts
        assert await client.receive() == {"id": "1", "type": "complete"}
        async with asyncio.timeout(10):
            await reader
        assert events == ["complete"]
        # While draining, nothing new starts.
        await client.subscribe("2", NEW_FOLLOWER)
        message = await client.receive()
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    finally:
        replica.app.realtime.draining = False
        await client.close()
    await listening(replica, 0)


# Installed by `make test` (tests/browser/install.sh), as for the browser test.
NODE_MODULES = Path(__file__).resolve().parents[1] / "browser" / "node_modules"
# The `graphql-ws` library's own client: prints every `next` payload as a JSON line.
NODE_CLIENT = """
const { createRequire } = require("node:module");
const load = createRequire(process.argv[1] + "/");
const { createClient } = load("graphql-ws");
const WebSocket = load("ws");
const client = createClient({
  url: process.argv[2],
  webSocketImpl: WebSocket,
  connectionParams: { Authorization: "Bearer " + process.argv[3] },
});
client.subscribe(
  { query: process.argv[4] },
  {
    next: (value) => console.log(JSON.stringify(value)),
    error: (error) => { console.log(JSON.stringify({ failed: String(error) })); process.exit(1); },
    complete: () => process.exit(0),
  },
);
"""


@pytest.mark.skipif(
    shutil.which("node") is None or not (NODE_MODULES / "graphql-ws").is_dir(),
    reason="needs Node and the graphql-ws npm package (make browser-deps); CI installs both",
)
async def test_the_graphql_ws_npm_client(stack: Stack, replica: Replica) -> None:
    star, fan = await stack.register(), await stack.register()
    node = await asyncio.create_subprocess_exec(
        "node",
        "-e",
        NODE_CLIENT,
        str(NODE_MODULES),
        replica.ws_url,
        star.access_token,
        NEW_FOLLOWER,
        stdout=asyncio.subprocess.PIPE,
    )
    try:
        await listening(replica, 1)
        await stack.graphql(FOLLOW, {"id": star.id}, token=fan.access_token)
        assert node.stdout is not None
        async with asyncio.timeout(20):
            line = await node.stdout.readline()
        received = orjson.loads(line)
        assert received["data"]["newFollower"]["node"]["username"] == fan.username
    finally:
        node.kill()
        await node.wait()
    await listening(replica, 0)


async def test_subscription_limit_per_connection(stack: Stack, replica: Replica) -> None:
    member = await stack.register()
    client = await TransportWs.open(replica.ws_url, member.access_token)
    try:
        for n in range(PER_CONNECTION_LIMIT):
            await client.subscribe(str(n), NEW_FOLLOWER)
        await client.subscribe("one too many", NEW_FOLLOWER)
        message = await client.receive()
        assert message["id"] == "one too many"
        assert message["type"] == "error"
        assert message["payload"][0]["extensions"]["code"] == "RATE_LIMITED"
        # Ending one makes room for another.
        await client.send({"id": "0", "type": "complete"})
        await client.subscribe("next", NEW_FOLLOWER)
        hub = replica.app.realtime.service.hub
        await eventually(lambda: _true(hub.client_count == PER_CONNECTION_LIMIT), what="room")
    finally:
        await client.close()
    await listening(replica, 0)


async def test_keep_alives_on_every_protocol(stack: Stack, replica: Replica) -> None:
    member = await stack.register()
    for legacy, expected in ((False, "ping"), (True, "ka")):
        client = await TransportWs.open(replica.ws_url, member.access_token, legacy=legacy)
        try:
            for _ in range(2):  # one after another, for as long as the connection lives
                async with asyncio.timeout(10):
                    message = orjson.loads(await client.socket.recv())
                assert message["type"] == expected
        finally:
            await client.close()
    # SSE: a comment line; the stream stays open meanwhile.
    headers = {"accept": "text/event-stream", "authorization": f"Bearer {member.access_token}"}
    async with stack.http.stream(
        "POST", f"{replica.url}/graphql", json={"query": NEW_FOLLOWER}, headers=headers
    ) as response:
        async with asyncio.timeout(10):
            async for line in response.aiter_lines():
                if line.startswith(":"):
                    break
    await upstreams_open(replica, 0)


async def sse_with_ids(
    http: httpx.AsyncClient, url: str, body: dict[str, Any], token: str, last: str | None = None
) -> AsyncIterator[tuple[str | None, dict[str, Any]]]:
    """(event id, payload) of each `next` event of a graphql-sse stream."""
    headers = {"accept": "text/event-stream", "authorization": f"Bearer {token}"}
    if last is not None:
        headers["last-event-id"] = last
    async with http.stream("POST", f"{url}/graphql", json=body, headers=headers) as response:
        assert response.status_code == 200
        event_id: str | None = None
        async for line in response.aiter_lines():
            if line.startswith("id: "):
                event_id = line.removeprefix("id: ")
            elif line.startswith("data: "):
                yield event_id, orjson.loads(line.removeprefix("data: "))
                event_id = None


async def test_sse_resumes_on_another_replica_with_last_event_id(
    stack: Stack, replica: Replica
) -> None:
    owner, viewer = await stack.register(), await stack.register()
    body = {"query": USER_UPDATED, "variables": {"id": owner.id}}

    async def update(about: str) -> None:
        answer = await stack.graphql(
            UPDATE_PROFILE, {"input": {"about": about}}, token=owner.access_token
        )
        assert not answer.get("errors"), answer

    first: list[tuple[str | None, dict[str, Any]]] = []

    async def read_first() -> None:
        async for event in sse_with_ids(stack.http, replica.url, body, viewer.access_token):
            first.append(event)
            return  # the connection drops here

    reader = asyncio.create_task(read_first())
    await listening(replica, 1)
    await update("before the drop")
    async with asyncio.timeout(20):
        await reader
    last_id, payload = first[0]
    assert payload["data"]["userUpdated"]["profile"]["about"] == "before the drop"
    assert last_id
    # Missed while disconnected: kept by replica B's log.
    await update("missed 1")
    await update("missed 2")
    token, _, after = last_id.partition(":")
    replay = replica.app.realtime.replay
    logged: list[Any] = []

    async def both_logged() -> bool:
        logged[:] = await replay.redis().xrange(replay.prefix + token, f"({after}", "+")
        return len(logged) >= 2

    await eventually(both_logged, what="the missed events in the log")
    expected = [f"{token}:{entry_id.decode()}" for entry_id, _ in logged]
    resumed: list[tuple[str | None, str]] = []
    async with asyncio.timeout(20):
        async for event_id, data in sse_with_ids(
            stack.http, stack.urls["router"], body, viewer.access_token, last=last_id
        ):
            resumed.append((event_id, data["data"]["userUpdated"]["profile"]["about"]))
            if len(resumed) == len(expected):
                break
    # Exactly the events after the last one seen, once each, in order (through replica A).
    assert [event_id for event_id, _ in resumed] == expected
    assert resumed[-1][1] == "missed 2"
    # Gone once the retention passes without a reader: a resume is refused clearly.
    await listening(replica, 0)
    async with asyncio.timeout(20):
        async for _, data in sse_with_ids(
            stack.http, replica.url, body, viewer.access_token, last=resumed[-1][0]
        ):
            assert data["errors"][0]["extensions"]["code"] == "STREAM_NOT_RESUMABLE"
            break
