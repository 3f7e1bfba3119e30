"""Fixtures of the user subgraph tests: the real app (production middleware) on the session's
databases, two territories per test module (one per pod), users with real access tokens.

Users are written the way registration writes them (an account row in the home territory and
an identity in `global`), and their tokens are signed by the platform key ring, so the app
verifies them exactly as it verifies tokens from a login. Everything lives in the session's
own databases, NATS namespace, Redis prefix and temporary directories.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import Boolean, Column, MetaData, Table, Text, insert
from sqlalchemy.dialects.postgresql import UUID

from core.config import Settings
from core.db import Database, Territory
from core.db.migrations import migrate_global
from core.db.provisioning import create_territory
from core.db.territories import GLOBAL_SCHEMA
from core.security import KeyRing, access_token_claims
from subgraphs.user.app import create_app
from subgraphs.user.runtime import UserRuntime
from tests.conftest import SECOND_POD
from tests.lifespan import running
from tests.signing import SignedAsRouter

# The columns registration fills (the auth subgraph owns these tables).
_written = MetaData()
accounts = Table(
    "users",
    _written,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("username", Text),
    Column("display_name", Text),
    Column("password_hash", Text),
    Column("is_active", Boolean),
)
identities = Table(
    "user_identities",
    _written,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("username", Text),
    Column("public_key_hash", Text),
    Column("territory_code", Text),
    Column("territory_user_id", UUID(as_uuid=True)),
    schema=GLOBAL_SCHEMA,
)


@pytest.fixture(scope="session")
def user_settings(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Settings:
    return settings.replace(
        AVATAR_STORAGE_DIR=str(tmp_path_factory.mktemp("avatars")),
        AVATAR_PUBLIC_BASE_URL="http://user.test",
    )


@pytest.fixture(scope="session")
async def user_migrated(user_settings: Settings) -> None:
    await migrate_global(user_settings)


@dataclass
class Territories:
    home: Territory  # on the default pod
    remote: Territory  # on the second pod


@pytest.fixture(scope="module")
async def territories(user_settings: Settings, user_migrated: None) -> AsyncIterator[Territories]:
    suffix = secrets.token_hex(3)
    db = Database(user_settings.database)
    try:
        home = await create_territory(
            user_settings, db, code=f"uh{suffix}", name="Home test land", type="country"
        )
        remote = await create_territory(
            user_settings,
            db,
            code=f"ur{suffix}",
            name="Remote test land",
            type="country",
            pod_id=SECOND_POD,
        )
        yield Territories(home, remote)
    finally:
        await db.dispose()


@dataclass
class Person:
    id: str
    username: str
    territory: str
    token: str
    session_id: str


class People:
    """Creates users as registration would, each with a valid access token."""

    def __init__(self, settings: Settings, db: Database) -> None:
        self._keyring = KeyRing.from_settings(settings)
        self._db = db

    async def create(
        self, territory: str, *, username: str | None = None, display_name: str | None = None
    ) -> Person:
        user_id = uuid.uuid4()
        name = username or f"p_{uuid.uuid4().hex[:12]}"
        async with self._db.territory_session(territory) as session:
            # The account row as registration writes it; these users never log in, so the
            # (required) password hash is a value no password verifies against.
            await session.execute(
                insert(accounts).values(
                    id=user_id,
                    username=name,
                    display_name=display_name,
                    is_active=True,
                    password_hash="!",
                )
            )
        # Identities live in `global` on the default pod, whichever pod the territory is on.
        async with self._db.global_session() as session:
            await session.execute(
                insert(identities).values(
                    id=user_id,
                    territory_code=territory,
                    username=name,
                    public_key_hash=secrets.token_hex(32),
                    territory_user_id=user_id,
                )
            )
        return self.signed_in(str(user_id), name, territory)

    def signed_in(self, user_id: str, username: str, territory: str) -> Person:
        session_id = str(uuid.uuid4())
        token = self._keyring.sign(
            access_token_claims(
                user_id=user_id,
                username=username,
                territory_code=territory,
                session_id=session_id,
                roles=[],
            ),
            ttl_seconds=900,
        )
        return Person(user_id, username, territory, token, session_id)


class GraphQLError(AssertionError):
    pass


@dataclass
class Client:
    http: httpx.AsyncClient
    token: str | None = None

    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"} if self.token else {}

    async def execute(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        response = await self.http.post(
            "/graphql", json={"query": query, "variables": variables or {}}, headers=self.headers()
        )
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body

    async def data(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.execute(query, variables)
        if body.get("errors"):
            raise GraphQLError(str(body["errors"]))
        data: dict[str, Any] = body["data"]
        return data

    async def error(self, query: str, variables: dict[str, Any] | None = None) -> dict[str, Any]:
        body = await self.execute(query, variables)
        assert body.get("errors"), f"expected an error, got {body}"
        error: dict[str, Any] = body["errors"][0]
        return error


@dataclass
class UserApp:
    http: httpx.AsyncClient
    people: People
    db: Database
    settings: Settings
    avatar_dir: Path
    runtime: UserRuntime
    state: Any = None  # the Litestar app's state

    def client(self, who: Person | None = None) -> Client:
        return Client(self.http, token=who.token if who is not None else None)


@asynccontextmanager
async def serving(settings: Settings, **app_options: bool) -> AsyncIterator[UserApp]:
    """The real app (`create_app(settings, **app_options)`) running, with a client to it."""
    app = create_app(settings, **app_options)
    db = Database(settings.database)
    try:
        async with (
            running(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://user.test",
                auth=SignedAsRouter(settings),
            ) as http,
        ):
            yield UserApp(
                http,
                People(settings, db),
                db,
                settings,
                Path(settings.user.avatar_storage_dir),
                app.state.user_runtime,
                app.state,
            )
    finally:
        await db.dispose()


@pytest.fixture(scope="module")
async def user_app(user_settings: Settings, territories: Territories) -> AsyncIterator[UserApp]:
    async with serving(user_settings, run_outbox_relay=False, run_consumers=False) as app:
        yield app


FOLLOW = "mutation($id: ID!) { follow(userId: $id) { id viewerFollows } }"
UNFOLLOW = "mutation($id: ID!) { unfollow(userId: $id) }"
BLOCK = "mutation($id: ID!, $reason: String) { block(userId: $id, reason: $reason) }"
UNBLOCK = "mutation($id: ID!) { unblock(userId: $id) }"
UPDATE_PROFILE = (
    "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { visibility } }"
)


async def follow(app: UserApp, who: Person, whom: Person) -> None:
    await app.client(who).data(FOLLOW, {"id": whom.id})


async def block(app: UserApp, who: Person, whom: Person, reason: str | None = None) -> None:
    await app.client(who).data(BLOCK, {"id": whom.id, "reason": reason})


async def set_visibility(app: UserApp, who: Person, visibility: str) -> None:
    await app.client(who).data(UPDATE_PROFILE, {"input": {"visibility": visibility}})
