"""The auth subscriptions, fed by the events the outbox relay publishes on NATS."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

from core.kit.repository import ClientInfo
from core.security import authenticate
from subgraphs.auth.context import AuthContext
from subgraphs.auth.loaders import Loaders
from subgraphs.auth.repository import GlobalRepository
from subgraphs.auth.schema import schema
from tests.subgraphs.auth.conftest import (
    LOGIN,
    AuthApp,
    Territories,
    register_member,
    unique_username,
)


async def _context(auth_app: AuthApp, token: str) -> AuthContext:
    runtime = auth_app.runtime
    viewer = await authenticate(f"Bearer {token}", runtime.keyring, runtime.revocations)
    return AuthContext(
        rt=runtime, viewer=viewer, auth_error=None, client=ClientInfo(), loaders=Loaders(runtime)
    )


async def _received(
    auth_app: AuthApp,
    query: str,
    token: str,
    trigger: Callable[[], Awaitable[None]],
    wanted: Callable[[dict[str, Any]], bool],
    variables: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The first item `wanted` of a subscription, once `trigger()` has run while it listens
    (events of earlier actions may still arrive first: the relay publishes asynchronously)."""
    before = auth_app.runtime.feed.listening
    stream = await schema.subscribe(
        query, variable_values=variables, context_value=await _context(auth_app, token)
    )
    assert isinstance(stream, AsyncIterator)

    async def matching() -> dict[str, Any]:
        async for result in stream:
            assert not result.errors, result.errors
            if wanted(result.data):
                data: dict[str, Any] = result.data
                return data
        raise AssertionError("the subscription ended")

    found = asyncio.ensure_future(matching())
    deadline = time.monotonic() + 5
    while auth_app.runtime.feed.listening <= before:
        assert not found.done(), found.result()
        assert time.monotonic() < deadline, "the subscription never started listening"
        await asyncio.sleep(0.02)
    try:
        await trigger()
        return await asyncio.wait_for(found, 10)
    finally:
        await stream.aclose()  # type: ignore[attr-defined]


async def test_session_revoked_reports_the_ended_session(
    auth_app: AuthApp, territories: Territories
) -> None:
    member = await register_member(auth_app, territories.remote.code)
    tablet = auth_app.client()
    tablet.user_agent = "tablet/9"
    other = (
        await tablet.data(
            LOGIN, {"input": {"username": member.username, "password": member.password}}
        )
    )["login"]

    async def log_the_tablet_out() -> None:
        await auth_app.client().data(
            "mutation L($t: String!) { logout(refreshToken: $t) }", {"t": other["refreshToken"]}
        )

    data = await _received(
        auth_app,
        "subscription { sessionRevoked { id userAgent current expiresAt } }",
        member.access_token,
        log_the_tablet_out,
        lambda data: True,
    )
    revoked = data["sessionRevoked"]
    assert revoked["userAgent"] == "tablet/9"
    assert revoked["current"] is False


async def test_territory_member_joined(auth_app: AuthApp, territories: Territories) -> None:
    watcher = await register_member(auth_app, territories.home.code)
    newcomer = unique_username("new")

    async def someone_registers() -> None:
        await register_member(auth_app, territories.home.code, username=newcomer)

    data = await _received(
        auth_app,
        "subscription J($c: ID!) { territoryMemberJoined(territoryCode: $c) { id username } }",
        watcher.access_token,
        someone_registers,
        lambda data: data["territoryMemberJoined"]["username"] == newcomer,
        {"c": territories.home.code},
    )
    async with auth_app.runtime.db.global_session() as session:
        identity = await GlobalRepository(session).identity_by_username(newcomer)
    assert identity is not None
    assert data["territoryMemberJoined"]["id"] == str(identity.id)
