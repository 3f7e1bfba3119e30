"""Fixtures of the auth subgraph tests: the real app (production middleware) on the session's
databases, two territories per test module (one per pod), and a GraphQL client helper.

Everything created here lives in the session's own databases, NATS namespace and Redis key
prefix, which tests/conftest.py removes at the end.
"""

from __future__ import annotations

import itertools
import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from core.config import Settings
from core.db import Database, Territory
from core.db.migrations import migrate_global
from core.db.provisioning import create_territory
from subgraphs.auth.app import create_app
from subgraphs.auth.bootstrap import issue_invitation
from subgraphs.auth.runtime import AuthRuntime
from tests.conftest import SECOND_POD
from tests.lifespan import running
from tests.signing import SignedAsRouter

_ips = itertools.count(1)


def fresh_ip() -> str:
    """A client address no other test uses, so per-IP limits never leak between tests."""
    n = next(_ips)
    return f"10.{(n >> 16) & 255}.{(n >> 8) & 255}.{n & 255}"


@pytest.fixture(scope="session")
def auth_settings(settings: Settings) -> Settings:
    # Light Argon2 parameters keep the suite fast; bench/auth_login.py measures the real ones.
    return settings.replace(
        ARGON2_MEMORY_KIB=1024,
        ARGON2_TIME_COST=1,
    )


@pytest.fixture(scope="session")
async def migrated(auth_settings: Settings) -> None:
    await migrate_global(auth_settings)


@dataclass
class Territories:
    home: Territory  # on the default pod, sharing the database with `global`
    remote: Territory  # on the second pod


@pytest.fixture(scope="module")
async def territories(
    auth_settings: Settings, migrated: None, request: pytest.FixtureRequest
) -> AsyncIterator[Territories]:
    suffix = secrets.token_hex(3)
    db = Database(auth_settings.database)
    try:
        home = await create_territory(
            auth_settings, db, code=f"h{suffix}", name="Home test land", type="country"
        )
        remote = await create_territory(
            auth_settings,
            db,
            code=f"r{suffix}",
            name="Remote test land",
            type="country",
            pod_id=SECOND_POD,
        )
        yield Territories(home, remote)
    finally:
        await db.dispose()


class GraphQLError(AssertionError):
    pass


@dataclass
class Client:
    """Speaks GraphQL to the app like a frontend: one IP, optionally one bearer token."""

    http: httpx.AsyncClient
    ip: str = field(default_factory=fresh_ip)
    token: str | None = None
    user_agent: str = "auth-tests/1.0"

    def headers(self, token: str | None = None) -> dict[str, str]:
        headers = {"X-Forwarded-For": self.ip, "User-Agent": self.user_agent}
        bearer = token if token is not None else self.token
        if bearer:
            headers["Authorization"] = f"Bearer {bearer}"
        return headers

    async def execute(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        """The whole response document."""
        response = await self.http.post(
            "/graphql",
            json={"query": query, "variables": variables or {}},
            headers=self.headers(token),
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        """`data`, failing the test on any error."""
        body = await self.execute(query, variables, token=token)
        if body.get("errors"):
            raise GraphQLError(str(body["errors"]))
        data: dict[str, Any] = body["data"]
        return data

    async def error(
        self, query: str, variables: dict[str, Any] | None = None, *, token: str | None = None
    ) -> dict[str, Any]:
        """The first error (with `extensions`), failing the test when there is none."""
        body = await self.execute(query, variables, token=token)
        assert body.get("errors"), f"expected an error, got {body}"
        error: dict[str, Any] = body["errors"][0]
        return error


@dataclass
class AuthApp:
    http: httpx.AsyncClient
    runtime: AuthRuntime
    settings: Settings

    def client(self, token: str | None = None) -> Client:
        return Client(self.http, token=token)


@asynccontextmanager
async def serving(settings: Settings) -> AsyncIterator[AuthApp]:
    """The auth app of `settings`, running, with a client that signs as the router."""
    app = create_app(settings)
    async with (
        running(app),
        httpx.AsyncClient(
            transport=httpx.ASGITransport(app=app),
            base_url="http://auth",
            auth=SignedAsRouter(settings),
        ) as http,
    ):
        yield AuthApp(http, app.state.auth_runtime, settings)


@pytest.fixture(scope="module")
async def auth_app(auth_settings: Settings, migrated: None) -> AsyncIterator[AuthApp]:
    async with serving(auth_settings) as served:
        yield served


REGISTER = """
mutation Register($input: RegisterInput!) {
  register(input: $input) {
    accessToken refreshToken expiresIn tokenType
    user { id username federatedAddress email fullName territory { code } }
  }
}
"""

LOGIN = """
mutation Login($input: LoginInput!) {
  login(input: $input) { accessToken refreshToken expiresIn user { id username } }
}
"""


@dataclass
class Member:
    """A registered user with a live session."""

    id: str
    username: str
    password: str
    territory_code: str
    access_token: str
    refresh_token: str
    email: str | None


async def group_invitation(auth_app: AuthApp, code: str, uses: int = 50) -> str:
    invitation = await issue_invitation(auth_app.runtime, code, creator_id=None, max_uses=uses)
    return invitation.token


def unique_username(prefix: str = "u") -> str:
    return f"{prefix}_{uuid.uuid4().hex[:12]}"


async def register_member(
    auth_app: AuthApp,
    code: str,
    *,
    invitation: str | None = None,
    username: str | None = None,
    password: str = "correct horse battery staple",  # noqa: S107 - test data
    email: str | None = None,
    full_name: str | None = None,
) -> Member:
    token = invitation or await group_invitation(auth_app, code, uses=2)
    name = username or unique_username()
    data = await auth_app.client().data(
        REGISTER,
        {
            "input": {
                "territoryCode": code,
                "invitationToken": token,
                "username": name,
                "password": password,
                "email": email,
                "fullName": full_name,
            }
        },
    )
    payload = data["register"]
    return Member(
        id=payload["user"]["id"],
        username=name,
        password=password,
        territory_code=code,
        access_token=payload["accessToken"],
        refresh_token=payload["refreshToken"],
        email=email,
    )
