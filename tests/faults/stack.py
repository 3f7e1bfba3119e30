"""The whole product as `make dev` runs it, for fault tests: embedded PostgreSQL, NATS and
Redis of the tests' own on free ports (so stopping one touches nothing shared) and the auth,
user and router services as their own processes (so one can be killed), through the same
runner `make dev` uses.

A pytest plugin module (`pytest_plugins = ["tests.faults.stack"]`): `fault_stack` runs once per
test module; every test leaves its servers and services running as it found them.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import tempfile
import uuid
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import Settings, load_settings
from subgraphs.auth.bootstrap import bootstrap_territory
from tests.e2e.stack import PASSWORD, REGISTER, Member, eventually
from unityplan.devstack import EmbeddedStack, free_port
from unityplan.devstack.demo import migrate_and_provision
from unityplan.devstack.services import Console, ServiceRunner

TERRITORY = "dk"  # the demo territory `make dev` provisions


@dataclass
class Answer:
    """One HTTP answer of the router: its status and its GraphQL response document."""

    status: int
    body: dict[str, Any]

    @property
    def codes(self) -> list[str]:
        """The `extensions.code` of every error (empty when the operation succeeded)."""
        return [str(error.get("extensions", {}).get("code")) for error in self.errors]

    @property
    def errors(self) -> list[dict[str, Any]]:
        errors: list[dict[str, Any]] = self.body.get("errors") or []
        return errors

    @property
    def ok(self) -> bool:
        return self.status == 200 and not self.errors


@dataclass
class FaultStack:
    servers: EmbeddedStack
    services: ServiceRunner
    settings: Settings
    invitation: str
    http: httpx.AsyncClient
    _clients: list[int] = field(default_factory=lambda: [0])

    @property
    def router_url(self) -> str:
        return self.services.base_url("router")

    @property
    def ws_url(self) -> str:
        return self.router_url.replace("http://", "ws://") + "/graphql"

    async def graphql(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> Answer:
        """Through the router, as a client of its own address (no client shares a rate limit)."""
        self._clients[0] += 1
        n = self._clients[0]
        headers = {"X-Forwarded-For": f"10.77.{n // 250}.{n % 250 + 1}"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        response = await self.http.post(
            f"{self.router_url}/graphql",
            json={"query": query, "variables": variables or {}},
            headers=headers,
        )
        return Answer(response.status_code, response.json())

    async def register(self) -> Member:
        username = f"f_{uuid.uuid4().hex[:12]}"
        answer = await self.graphql(
            REGISTER,
            {
                "input": {
                    "territoryCode": TERRITORY,
                    "invitationToken": self.invitation,
                    "username": username,
                    "password": PASSWORD,
                }
            },
        )
        assert answer.ok, answer.body
        payload = answer.body["data"]["register"]
        return Member(
            payload["user"]["id"], username, payload["accessToken"], payload["refreshToken"]
        )

    def kill(self, service: str) -> None:
        """SIGKILL a service process: no shut-down code of its own runs."""
        pid = self.services.pid(service)
        assert pid is not None, f"{service} is not running"
        os.kill(pid, signal.SIGKILL)

    async def restart(self, service: str) -> None:
        """Start a stopped or killed service again and wait until it answers."""
        await asyncio.to_thread(self.services.restart, service)
        await asyncio.to_thread(self.services.wait_healthy, service)

    async def ready(self) -> None:
        """Wait until every service says it can serve (its `/ready`)."""
        for name in ("auth", "user", "router"):
            url = f"{self.services.base_url(name)}/ready"

            async def answers(url: str = url) -> bool:
                try:
                    return (await self.http.get(url)).status_code == 200
                except httpx.HTTPError:
                    return False

            await eventually(answers, what=f"{name} ready", within=60.0)


@pytest.fixture(scope="module")
async def fault_stack() -> AsyncIterator[FaultStack]:
    # Not under pytest's tmp dir: the embedded PostgreSQL runs as an unprivileged account
    # when the tests run as root, and pytest resets its own dirs to mode 700.
    root = Path(tempfile.mkdtemp(prefix="unityplan-faults-"))
    servers = EmbeddedStack(
        root, postgres_port=free_port(), nats_port=free_port(), redis_port=free_port()
    )
    environment = {
        "APP_ENV": "development",
        "DEVSTACK_DIR": str(root),
        "AUTH_PORT": str(free_port()),
        "USER_PORT": str(free_port()),
        "ROUTER_PORT": str(free_port()),
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_TIME_COST": "1",
        "TRUSTED_PROXIES": "127.0.0.0/8",
        "LOG_LEVEL": "WARNING",
        "AVATAR_STORAGE_DIR": str(root / "avatars"),
    }
    log = (root / "services.log").open("w")
    runner: ServiceRunner | None = None
    try:
        urls = await asyncio.to_thread(servers.start)
        environment |= {
            "DATABASE_URL": urls.database_url,
            "NATS_URL": urls.nats_url,
            "REDIS_URL": urls.redis_url,
        }
        settings = load_settings(environment)
        await migrate_and_provision(settings)
        invitation = (await bootstrap_territory(settings, TERRITORY)).invitation_token
        runner = ServiceRunner(settings, environment, Console(log))
        for group in (("auth", "user"), ("router",)):
            for name in group:
                runner.launch(name)
            for name in group:
                await asyncio.to_thread(runner.wait_healthy, name)
        async with httpx.AsyncClient(timeout=30) as http:
            stack = FaultStack(servers, runner, settings, invitation, http)
            await stack.ready()
            yield stack
    finally:
        if runner is not None:
            await asyncio.to_thread(runner.stop_all)
        await asyncio.to_thread(servers.stop)
        log.close()
        shutil.rmtree(root, ignore_errors=True)
