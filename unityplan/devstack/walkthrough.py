"""`unityplan demo`: the running stack end to end through the router, every request and answer
printed, so a newcomer sees the whole system work in one command.

Two users register in the demo territory with the development invitation, one logs in, a query
spans both subgraphs, and a subscription (newFollower, over graphql-transport-ws) fires when
the other user follows the first.
"""

from __future__ import annotations

import asyncio
import json
import secrets
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import httpx
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import WebSocketException

from core.errors import InfrastructureError

PASSWORD = "correct horse battery staple"  # noqa: S105 - the demo users' published password
# How long the subscription may take to reach the user subgraph before the follow is repeated.
EVENT_WAIT_SECONDS = 5.0
FOLLOW_ATTEMPTS = 3

REGISTER = """mutation Register($input: RegisterInput!) {
  register(input: $input) { accessToken user { id username territory { code } } }
}"""
LOGIN = """mutation Login($input: LoginInput!) {
  login(input: $input) { accessToken user { id username } }
}"""
# `me`, `username` and `territory` come from the auth subgraph, `profile` and `followerCount`
# from the user subgraph: the router plans and joins them.
ACROSS_SUBGRAPHS = """query Me {
  me { id username territory { code name } profile { visibility interests } followerCount }
}"""
NEW_FOLLOWER = (
    """subscription { newFollower { followedAt node { username territory { name } } } }"""
)
FOLLOW = """mutation Follow($userId: ID!) { follow(userId: $userId) { username followerCount } }"""
UNFOLLOW = """mutation Unfollow($userId: ID!) { unfollow(userId: $userId) }"""


class StepFailed(InfrastructureError):
    """A step of the walkthrough got an answer other than the one the stack should give."""


@dataclass(frozen=True)
class Demo:
    """Where the walkthrough runs: the router's GraphQL URL, the territory and its invitation."""

    graphql_url: str
    territory_code: str
    invitation_token: str

    @property
    def websocket_url(self) -> str:
        return "ws" + self.graphql_url.removeprefix("http")


def _shown(value: Any) -> str:
    """JSON for the reader: tokens (long strings) shortened, the rest as sent."""

    def shorten(item: Any) -> Any:
        if isinstance(item, dict):
            return {key: shorten(inner) for key, inner in item.items()}
        if isinstance(item, list):
            return [shorten(inner) for inner in item]
        if isinstance(item, str) and len(item) > 60:
            return f"{item[:24]}...({len(item)} chars)"
        return item

    return json.dumps(shorten(value), ensure_ascii=False)


class Walkthrough:
    """Runs the steps against `demo`, writing each request and answer with `echo`."""

    def __init__(self, demo: Demo, echo: Callable[[str], None]) -> None:
        self.demo = demo
        self.echo = echo
        self._step = 0

    def title(self, text: str) -> None:
        self._step += 1
        self.echo(f"\n== {self._step}. {text}")

    async def graphql(
        self,
        http: httpx.AsyncClient,
        query: str,
        variables: dict[str, Any] | None = None,
        token: str | None = None,
    ) -> dict[str, Any]:
        """POST one operation, print it and its answer; its `data` (errors end the demo)."""
        body: dict[str, Any] = {"query": query}
        if variables:
            body["variables"] = variables
        headers = {"authorization": f"Bearer {token}"} if token else {}
        auth = " with Authorization: Bearer <accessToken>" if token else ""
        self.echo(f"-> POST {self.demo.graphql_url}{auth}")
        for line in query.splitlines():
            self.echo(f"   {line}")
        if variables:
            self.echo(f"   variables: {_shown(variables)}")
        try:
            response = await http.post(self.demo.graphql_url, json=body, headers=headers)
        except httpx.HTTPError as exc:
            raise InfrastructureError(
                f"No router answers at {self.demo.graphql_url} ({exc}): start the stack with "
                "`make dev` (ROUTER_PORT moves it)"
            ) from None
        self.echo(f"<- {response.status_code} {_shown(response.json())}")
        answer: dict[str, Any] = response.json()
        if answer.get("errors") or response.status_code != 200:
            error = (answer.get("errors") or [{}])[0]
            code = error.get("extensions", {}).get("code", response.status_code)
            raise StepFailed(f"Step {self._step} failed: {error.get('message')} ({code})")
        data: dict[str, Any] = answer["data"]
        return data

    async def run(self) -> None:
        suffix = secrets.token_hex(3)
        async with httpx.AsyncClient(timeout=30) as http:
            await self.router_answers(http)
            alice = await self.register(http, f"alice_{suffix}")
            bob = await self.register(http, f"bob_{suffix}")
            self.title(f"{alice} logs in")
            login = await self.graphql(
                http, LOGIN, {"input": {"username": alice, "password": PASSWORD}}
            )
            token: str = login["login"]["accessToken"]
            alice_id: str = login["login"]["user"]["id"]
            self.title("One query across both subgraphs (me: auth; profile, followerCount: user)")
            await self.graphql(http, ACROSS_SUBGRAPHS, token=token)
            await self.subscription(http, token, alice, alice_id, bob)
        self.echo(
            f"\nDone: {alice} and {bob} live in {self.demo.territory_code}; "
            f"their password is '{PASSWORD}'."
        )

    async def router_answers(self, http: httpx.AsyncClient) -> None:
        health = self.demo.graphql_url.removesuffix("/graphql") + "/health"
        try:
            (await http.get(health)).raise_for_status()
        except httpx.HTTPError as exc:
            raise InfrastructureError(
                f"No router answers at {health} ({exc}): start the stack with `make dev` "
                "in another terminal (ROUTER_PORT moves it)"
            ) from None

    async def register(self, http: httpx.AsyncClient, username: str) -> str:
        self.title(f"Register {username} in {self.demo.territory_code} with the dev invitation")
        await self.graphql(
            http,
            REGISTER,
            {
                "input": {
                    "territoryCode": self.demo.territory_code,
                    "invitationToken": self.demo.invitation_token,
                    "username": username,
                    "password": PASSWORD,
                }
            },
        )
        return username

    async def subscription(
        self, http: httpx.AsyncClient, token: str, alice: str, alice_id: str, bob: str
    ) -> None:
        self.title(f"{alice} subscribes to newFollower over WebSocket (graphql-transport-ws)")
        self.echo(f"-> WebSocket {self.demo.websocket_url} (subprotocol graphql-transport-ws)")
        try:
            socket = await connect(self.demo.websocket_url, subprotocols=["graphql-transport-ws"])  # type: ignore[list-item]
        except (OSError, WebSocketException) as exc:
            raise InfrastructureError(
                f"No router accepts WebSockets at {self.demo.websocket_url} ({exc})"
            ) from None
        async with socket:
            await self.send(
                socket, {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            )
            await self.receive(socket, "connection_ack")
            await self.send(
                socket, {"id": "1", "type": "subscribe", "payload": {"query": NEW_FOLLOWER}}
            )
            bob_token = await self.bob_logs_in(http, bob)
            for attempt in range(FOLLOW_ATTEMPTS):
                if attempt:
                    self.title(
                        f"No event yet (the subscription was still starting): {bob} "
                        "unfollows and follows again"
                    )
                    await self.graphql(http, UNFOLLOW, {"userId": alice_id}, token=bob_token)
                else:
                    self.title(f"{bob} follows {alice}: the subscription fires")
                await self.graphql(http, FOLLOW, {"userId": alice_id}, token=bob_token)
                try:
                    await self.receive(socket, "next", within=EVENT_WAIT_SECONDS)
                except TimeoutError:
                    continue
                await self.send(socket, {"id": "1", "type": "complete"})
                return
        raise StepFailed(
            f"The newFollower subscription did not fire within {EVENT_WAIT_SECONDS:g}s, "
            f"{FOLLOW_ATTEMPTS} times: see the user service's output"
        )

    async def bob_logs_in(self, http: httpx.AsyncClient, bob: str) -> str:
        self.title(f"{bob} logs in")
        login = await self.graphql(http, LOGIN, {"input": {"username": bob, "password": PASSWORD}})
        token: str = login["login"]["accessToken"]
        return token

    async def send(self, socket: ClientConnection, message: dict[str, Any]) -> None:
        self.echo(f"-> {_shown(message)}")
        await socket.send(json.dumps(message))

    async def receive(
        self, socket: ClientConnection, expected: str, within: float = 10.0
    ) -> dict[str, Any]:
        """The next message other than pings (answered), which must be of type `expected`."""
        async with asyncio.timeout(within):
            while True:
                message: dict[str, Any] = json.loads(await socket.recv())
                if message.get("type") == "ping":
                    await socket.send(json.dumps({"type": "pong"}))
                    continue
                self.echo(f"<- {_shown(message)}")
                if message.get("type") != expected:
                    raise StepFailed(f"Step {self._step}: expected {expected}, got {message}")
                return message


def run_walkthrough(demo: Demo, echo: Callable[[str], None]) -> None:
    asyncio.run(Walkthrough(demo, echo).run())
