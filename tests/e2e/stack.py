"""The real services on free local ports in the test's event loop: auth and user subgraphs
and the router composing them, on the session's databases, NATS namespace and Redis prefix.

A pytest plugin module (`pytest_plugins = ["tests.e2e.stack"]`): the `stack` fixture runs once
per test module, with a territory of its own, and an in-memory exporter on every tracer
provider involved, so a test can read the spans of all services.
"""

from __future__ import annotations

import asyncio
import secrets
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest
import uvicorn
from opentelemetry import trace
from opentelemetry.sdk.trace import ReadableSpan, TracerProvider
from opentelemetry.sdk.trace.export import SimpleSpanProcessor
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from core.config import Settings
from core.db import Database, Territory
from core.db.migrations import migrate_global
from core.db.provisioning import create_territory
from router.server.app import create_app as create_router
from subgraphs.auth.app import create_app as create_auth
from subgraphs.auth.bootstrap import issue_invitation
from subgraphs.user.app import create_app as create_user
from tests.router.subgraph_kit import free_port
from unityplan.registry import router_settings, subgraph_urls

REGISTER = """
mutation Register($input: RegisterInput!) {
  register(input: $input) { accessToken refreshToken user { id username } }
}
"""
LOGIN = """
mutation Login($input: LoginInput!) {
  login(input: $input) { accessToken refreshToken user { id } }
}
"""
REFRESH = (
    "mutation Refresh($token: String!) { refreshToken(refreshToken: $token) { refreshToken } }"
)
ME = "query Me { me { id username profile { about } followerCount } }"
UPDATE_PROFILE = """
mutation About($input: UpdateProfileInput!) { updateProfile(input: $input) { about } }
"""
PASSWORD = "correct horse battery staple"


class Spans:
    """Finished spans of every provider of the stack, each once."""

    def __init__(self) -> None:
        self.exporter = InMemorySpanExporter()
        self._providers: set[int] = set()

    def watch(self, provider: object) -> None:
        if isinstance(provider, TracerProvider) and id(provider) not in self._providers:
            self._providers.add(id(provider))
            provider.add_span_processor(SimpleSpanProcessor(self.exporter))

    def of_trace(self, trace_id: int) -> list[ReadableSpan]:
        seen: dict[int, ReadableSpan] = {}
        for span in self.exporter.get_finished_spans():
            if span.context is not None and span.context.trace_id == trace_id:
                seen.setdefault(span.context.span_id, span)
        return list(seen.values())


@dataclass
class Member:
    id: str
    username: str
    access_token: str
    refresh_token: str


@dataclass
class Stack:
    settings: Settings
    territory: Territory
    urls: dict[str, str]  # service name -> base URL
    http: httpx.AsyncClient
    spans: Spans
    invitation: str
    _ips: list[int] = field(default_factory=lambda: [0])

    async def graphql(
        self,
        query: str,
        variables: dict[str, Any] | None = None,
        *,
        token: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> dict[str, Any]:
        """Through the router; the whole response document."""
        self._ips[0] += 1
        sent = {"X-Forwarded-For": f"10.99.{self._ips[0] // 250}.{self._ips[0] % 250 + 1}"}
        if token:
            sent["Authorization"] = f"Bearer {token}"
        response = await self.http.post(
            f"{self.urls['router']}/graphql",
            json={"query": query, "variables": variables or {}},
            headers={**sent, **(headers or {})},
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def register(self, **headers: str) -> Member:
        username = f"e2e_{uuid.uuid4().hex[:12]}"
        body = await self.graphql(
            REGISTER,
            {
                "input": {
                    "territoryCode": self.territory.code,
                    "invitationToken": self.invitation,
                    "username": username,
                    "password": PASSWORD,
                }
            },
            headers=headers,
        )
        assert not body.get("errors"), body
        payload = body["data"]["register"]
        return Member(
            payload["user"]["id"], username, payload["accessToken"], payload["refreshToken"]
        )

    async def metrics(self, service: str) -> str:
        response = await self.http.get(f"{self.urls[service]}/metrics")
        assert response.status_code == 200
        return response.text


async def eventually(
    check: Callable[[], Awaitable[bool]], *, within: float = 20.0, what: str = "condition"
) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.05)


async def _serve(app: Any, port: int) -> tuple[uvicorn.Server, asyncio.Task[None]]:
    server = uvicorn.Server(
        uvicorn.Config(
            app,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            lifespan="on",
            # As `unityplan serve` runs them: the router alone decides who the client is.
            proxy_headers=False,
        )
    )
    task = asyncio.create_task(server.serve())
    deadline = time.monotonic() + 60
    while not server.started:
        if task.done():
            task.result()  # start-up failed: raise its error
            raise RuntimeError("server stopped during start-up")
        if time.monotonic() > deadline:
            raise RuntimeError("server did not start")
        await asyncio.sleep(0.02)
    return server, task


@asynccontextmanager
async def served_router(stack: Stack, **env: Any) -> AsyncIterator[tuple[Any, str]]:
    """A router of its own on the stack's subgraphs (settings changed by `env`), served over a
    real socket: its app and its base URL."""
    settings = stack.settings.replace(**env)
    app = create_router(settings, subgraph_urls(settings))
    server, task = await _serve(app, port := free_port())
    try:
        yield app, f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        await task


@pytest.fixture(scope="module")
async def stack(
    settings: Settings, tmp_path_factory: pytest.TempPathFactory
) -> AsyncIterator[Stack]:
    ports = {name: free_port() for name in ("auth", "user", "router")}
    configured = settings.replace(
        ARGON2_MEMORY_KIB=1024,
        ARGON2_TIME_COST=1,
        # The tests' clients stand behind a proxy on this machine that names them.
        TRUSTED_PROXIES="127.0.0.0/8",
        AVATAR_STORAGE_DIR=str(tmp_path_factory.mktemp("e2e-avatars")),
        AUTH_SUBGRAPH_URL=f"http://127.0.0.1:{ports['auth']}/graphql",
        USER_SUBGRAPH_URL=f"http://127.0.0.1:{ports['user']}/graphql",
        USER_PORT=ports["user"],
    )
    # The routers of these tests verify tokens with the keys the auth subgraph publishes.
    configured = router_settings(configured)
    await migrate_global(configured)
    db = Database(configured.database)
    territory = await create_territory(
        configured, db, code=f"e{secrets.token_hex(3)}", name="Telemetry land", type="country"
    )
    await db.dispose()
    spans = Spans()
    if not isinstance(trace.get_tracer_provider(), TracerProvider):
        trace.set_tracer_provider(TracerProvider())
    spans.watch(trace.get_tracer_provider())  # relay, consumers and SQL use the global one
    auth, user = create_auth(configured), create_user(configured)
    router = create_router(configured, subgraph_urls(configured))
    for provider in (
        auth.state.tracer_provider,
        user.state.tracer_provider,
        router.telemetry.tracer_provider,
    ):
        spans.watch(provider)
    running: list[tuple[uvicorn.Server, asyncio.Task[None]]] = []
    try:
        running.append(await _serve(auth, ports["auth"]))
        running.append(await _serve(user, ports["user"]))
        running.append(await _serve(router, ports["router"]))  # composes from the two above
        invitation = await issue_invitation(
            auth.state.auth_runtime, territory.code, creator_id=None, max_uses=1000
        )
        async with httpx.AsyncClient(timeout=30) as http:
            yield Stack(
                configured,
                territory,
                {name: f"http://127.0.0.1:{port}" for name, port in ports.items()},
                http,
                spans,
                invitation.token,
            )
    finally:
        for server, _ in reversed(running):
            server.should_exit = True
        for _, task in reversed(running):
            await task
