"""Revocation through Redis outages, on an embedded Redis of this test's own (started on a free
port, stopped, restarted, emptied): ending a session either completes with its revocation on
the denylist or changes nothing, and no revoked token is ever accepted again, not even after
Redis comes back empty."""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest
import redis.asyncio as aioredis

from core.config import Settings
from subgraphs.auth.mailer import DevMailSink
from tests.subgraphs.auth.conftest import (
    AuthApp,
    Territories,
    register_member,
    serving,
    unique_username,
)
from unityplan.devstack import EmbeddedStack, free_port

ME = "{ me { id } }"
LOGOUT = "mutation Logout($token: String!) { logout(refreshToken: $token) }"
RESET = "mutation Reset($t: String!, $p: String!) { resetPassword(token: $t, newPassword: $p) }"


@pytest.fixture(scope="module")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedStack]:
    root = Path(tmp_path_factory.mktemp("fault-redis"))
    stack = EmbeddedStack(
        root, postgres_port=free_port(), nats_port=free_port(), redis_port=free_port()
    )
    stack.start(["redis"])
    try:
        yield stack
    finally:
        stack.stop()


@pytest.fixture(scope="module")
async def auth(
    auth_settings: Settings, migrated: None, redis_server: EmbeddedStack
) -> AsyncIterator[AuthApp]:
    async with serving(auth_settings.replace(REDIS_URL=redis_server.urls().redis_url)) as auth:
        yield auth


async def _code(auth: AuthApp, query: str, variables: dict[str, str], token: str) -> str:
    """The first error's code, or "OK" when the operation succeeded."""
    body = await auth.client(token).execute(query, variables)
    if not body.get("errors"):
        return "OK"
    code: str = body["errors"][0]["extensions"]["code"]
    return code


async def test_logout_in_an_outage_changes_nothing_and_revocations_survive_an_empty_redis(
    auth: AuthApp, territories: Territories, redis_server: EmbeddedStack
) -> None:
    member = await register_member(auth, territories.home.code)
    token, refresh = member.access_token, member.refresh_token
    assert await _code(auth, ME, {}, token) == "OK"

    redis_server.stop()
    try:
        # Ending the session needs its denylist entry: without Redis nothing is ended.
        assert await _code(auth, LOGOUT, {"token": refresh}, token) == "SERVICE_UNAVAILABLE"
        # Tokens cannot be checked either: refused, never trusted blindly.
        assert await _code(auth, ME, {}, token) == "SERVICE_UNAVAILABLE"
    finally:
        redis_server.start(["redis"])
    await _until(auth, token, "OK")  # nothing was ended: the session lives on
    assert await _code(auth, LOGOUT, {"token": refresh}, token) == "OK"
    assert await _code(auth, ME, {}, token) == "UNAUTHENTICATED"

    # Redis loses everything (a restart without persistence): the revoked token is refused
    # while the denylist is refilled, and after.
    client = aioredis.from_url(redis_server.urls().redis_url)
    try:
        await client.flushall()
    finally:
        await client.aclose()
    seen = await _until(auth, token, "UNAUTHENTICATED")
    assert seen <= {"SERVICE_UNAVAILABLE", "UNAUTHENTICATED"}, seen


async def test_a_password_reset_in_an_outage_changes_nothing_then_ends_every_session(
    auth: AuthApp, territories: Territories, redis_server: EmbeddedStack
) -> None:
    code = territories.home.code
    email = f"{unique_username()}@example.org"
    member = await register_member(auth, code, email=email)
    request = "mutation R($u: String!) { requestPasswordReset(username: $u) }"
    assert await _code(auth, request, {"u": member.username}, "") == "OK"
    await auth.runtime.mail.drain()
    mailer = auth.runtime.mail.mailer
    assert isinstance(mailer, DevMailSink)
    [mail] = mailer.mails_to(email)
    match = re.search(rf"^({re.escape(code)}\.[A-Za-z0-9_-]{{40,}})$", mail.get_content(), re.M)
    assert match, mail.get_content()
    reset = {"t": match.group(1), "p": "a brand new passphrase"}

    redis_server.stop()
    try:
        # Resetting ends every session, which needs the denylist: without Redis, nothing.
        assert await _code(auth, RESET, reset, "") == "SERVICE_UNAVAILABLE"
    finally:
        redis_server.start(["redis"])
    await _until(auth, member.access_token, "OK")  # the old password's session lives on
    # The reset link was not used up by the failed attempt: it works now, and ends it all.
    assert await _code(auth, RESET, reset, "") == "OK"
    assert await _code(auth, ME, {}, member.access_token) == "UNAUTHENTICATED"


async def _until(auth: AuthApp, token: str, wanted: str, within: float = 20.0) -> set[str]:
    """Ask `me` until it answers `wanted`; every answer seen on the way."""
    seen: set[str] = set()
    deadline = time.monotonic() + within
    while True:
        code = await _code(auth, ME, {}, token)
        seen.add(code)
        if code == wanted:
            return seen
        assert time.monotonic() < deadline, f"never {wanted}: saw {seen}"
        await asyncio.sleep(0.1)


async def test_a_database_that_cannot_be_reached_is_service_unavailable(
    auth_settings: Settings, migrated: None
) -> None:
    dead = f"postgresql+asyncpg://postgres@127.0.0.1:{free_port()}/unityplan"
    async with serving(auth_settings.replace(DATABASE_URL=dead, POD_DATABASE_URLS="{}")) as auth:
        body = await auth.client().execute("{ territories { code } }")
    [error] = body["errors"]
    assert error["extensions"]["code"] == "SERVICE_UNAVAILABLE"
    assert error["extensions"]["retryAfter"] >= 1
    assert "127.0.0.1" not in str(body)
