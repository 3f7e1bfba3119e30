"""`authenticate`: anonymous, malformed headers, valid tokens, and immediate session revocation."""

from __future__ import annotations

import asyncio
import secrets
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
import redis.asyncio as aioredis
from jose import jwt as jose_jwt

from core.config import Settings
from core.errors import Unauthenticated
from core.security import (
    KeyRing,
    SessionRegistry,
    access_token_claims,
    authenticate,
    generate_private_pem,
    load_signing_key,
)


@pytest.fixture(scope="module")
def keyring() -> KeyRing:
    key = load_signing_key(generate_private_pem("ES256"), "ES256")
    return KeyRing([key], issuer="unityplan", audience="unityplan")


@pytest.fixture
async def redis_client(settings: Settings) -> AsyncIterator[aioredis.Redis]:
    client = aioredis.from_url(settings.redis.url)
    yield client
    await client.aclose()


@pytest.fixture
async def sessions(
    settings: Settings, redis_client: aioredis.Redis
) -> AsyncIterator[SessionRegistry]:
    registry = SessionRegistry.from_settings(redis_client, settings)
    yield registry
    pattern = f"{settings.redis.key_prefix}*revoked-session:*"
    keys = [key async for key in redis_client.scan_iter(match=pattern)]
    if keys:
        await redis_client.delete(*keys)


def _token(keyring: KeyRing, session_id: str, roles: tuple[str, ...] = ("member",)) -> str:
    claims = access_token_claims(
        user_id="user-1",
        username="alice",
        territory_code="dk",
        session_id=session_id,
        roles=roles,
    )
    return keyring.sign(claims, ttl_seconds=900)


async def test_no_header_is_anonymous(keyring: KeyRing, sessions: SessionRegistry) -> None:
    assert await authenticate(None, keyring, sessions) is None
    assert await authenticate("", keyring, sessions) is None


@pytest.mark.parametrize(
    "header", ["Basic dXNlcjpwYXNz", "Bearer", "Bearer ", "Token abc", "Bearer a b", "bearer.x"]
)
async def test_malformed_header_refused(
    keyring: KeyRing, sessions: SessionRegistry, header: str
) -> None:
    with pytest.raises(Unauthenticated):
        await authenticate(header, keyring, sessions)


async def test_valid_token_gives_the_principal(keyring: KeyRing, sessions: SessionRegistry) -> None:
    session_id = secrets.token_hex(8)
    token = _token(keyring, session_id, roles=("territory_admin", "member", "member"))

    principal = await authenticate(f"Bearer {token}", keyring, sessions)

    assert principal is not None
    assert principal.user_id == "user-1"
    assert principal.username == "alice"
    assert principal.territory_code == "dk"
    assert principal.session_id == session_id
    assert principal.roles == frozenset({"territory_admin", "member"})
    assert principal.has_role("territory_admin")
    claims = jose_jwt.get_unverified_claims(token)
    assert principal.token_id == claims["jti"]
    assert principal.expires_at == datetime.fromtimestamp(claims["exp"], tz=UTC)
    # The scheme is case-insensitive (RFC 7235).
    assert await authenticate(f"bearer {token}", keyring, sessions) == principal


async def test_token_without_application_claims_refused(
    keyring: KeyRing, sessions: SessionRegistry
) -> None:
    token = keyring.sign({"sub": "user-1"}, ttl_seconds=60)
    with pytest.raises(Unauthenticated):
        await authenticate(f"Bearer {token}", keyring, sessions)


async def test_invalid_token_refused(keyring: KeyRing, sessions: SessionRegistry) -> None:
    other = KeyRing(
        [load_signing_key(generate_private_pem("ES256"), "ES256")],
        issuer="unityplan",
        audience="unityplan",
    )
    with pytest.raises(Unauthenticated):
        await authenticate(f"Bearer {_token(other, 's1')}", keyring, sessions)


async def test_revoked_session_refused_immediately(
    keyring: KeyRing, sessions: SessionRegistry
) -> None:
    revoked, alive = secrets.token_hex(8), secrets.token_hex(8)
    revoked_token, alive_token = _token(keyring, revoked), _token(keyring, alive)
    assert await authenticate(f"Bearer {revoked_token}", keyring, sessions) is not None

    await sessions.revoke(revoked)

    with pytest.raises(Unauthenticated):
        await authenticate(f"Bearer {revoked_token}", keyring, sessions)
    assert await authenticate(f"Bearer {alive_token}", keyring, sessions) is not None


async def test_revoke_many_and_expiry(
    keyring: KeyRing, sessions: SessionRegistry, redis_client: aioredis.Redis, settings: Settings
) -> None:
    ids = [secrets.token_hex(8) for _ in range(3)]
    await sessions.revoke_many(ids[:2])
    await sessions.revoke_many([])
    assert [await sessions.is_revoked(session_id) for session_id in ids] == [True, True, False]

    # Kept at least as long as an access token lives, then dropped by Redis on its own.
    ttl = await redis_client.ttl(f"{settings.redis.key_prefix}_global:revoked-session:{ids[0]}")
    assert settings.security.access_token_ttl_seconds <= ttl <= sessions.default_ttl_seconds

    short = secrets.token_hex(8)
    await sessions.revoke(short, ttl_seconds=1)
    deadline = time.monotonic() + 5
    while await sessions.is_revoked(short):
        assert time.monotonic() < deadline, "revocation entry never expired"
        await asyncio.sleep(0.1)
