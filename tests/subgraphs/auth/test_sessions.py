"""Sessions: refresh rotation, the grace window, reuse revocation, immediate revocation,
mySessions, revokeSession, logoutAll and changePassword."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from sqlalchemy import select, update

from core.db.tables import outbox
from subgraphs.auth.models import AuditEntry, RotatedRefreshToken
from subgraphs.auth.runtime import utcnow
from subgraphs.auth.tokens import token_hash
from tests.subgraphs.auth.conftest import LOGIN, AuthApp, Member, Territories, register_member

ME = "{ me { id } }"
REFRESH = """
mutation Refresh($token: String!) {
  refreshToken(refreshToken: $token) { accessToken refreshToken }
}
"""
SESSIONS = "{ mySessions { id createdAt lastUsedAt expiresAt userAgent ipAddress current } }"


async def _login(
    auth_app: AuthApp, member: Member, agent: str = "other-device/2"
) -> dict[str, str]:
    client = auth_app.client()
    client.user_agent = agent
    data = await client.data(
        LOGIN, {"input": {"username": member.username, "password": member.password}}
    )
    tokens: dict[str, str] = data["login"]
    return tokens


async def _refused_within_a_second(auth_app: AuthApp, access_token: str) -> None:
    deadline = time.monotonic() + 1.0
    while True:
        body = await auth_app.client(access_token).execute(ME)
        if body.get("errors") and body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED":
            return
        assert time.monotonic() < deadline, "the access token still works after a second"
        await asyncio.sleep(0.05)


async def _age_rotation(auth_app: AuthApp, code: str, refresh_token: str, seconds: float) -> None:
    """Pretend the token was rotated `seconds` ago (instead of sleeping through the window)."""
    async with auth_app.runtime.db.territory_session(code) as session:
        await session.execute(
            update(RotatedRefreshToken)
            .where(RotatedRefreshToken.token_hash == token_hash(refresh_token))
            .values(rotated_at=utcnow() - timedelta(seconds=seconds))
        )


async def test_each_refresh_rotates_the_token(auth_app: AuthApp, territories: Territories) -> None:
    member = await register_member(auth_app, territories.home.code)
    seen = {member.refresh_token}
    token = member.refresh_token
    for _ in range(3):
        pair = (await auth_app.client().data(REFRESH, {"token": token}))["refreshToken"]
        assert pair["refreshToken"] not in seen
        seen.add(pair["refreshToken"])
        token = pair["refreshToken"]
        assert (await auth_app.client(pair["accessToken"]).data(ME))["me"]["id"] == member.id
    # Once its grace window is over, the pair kept for a raced refresh is dropped.
    code = territories.home.code
    await _age_rotation(auth_app, code, member.refresh_token, seconds=60)
    await auth_app.client().data(REFRESH, {"token": token})
    async with auth_app.runtime.db.territory_session(code) as session:
        kept = await session.get(RotatedRefreshToken, token_hash(member.refresh_token))
        latest = await session.get(RotatedRefreshToken, token_hash(token))
    assert kept is not None
    assert kept.successor_ciphertext is None
    assert latest is not None
    assert latest.successor_ciphertext is not None


async def test_a_raced_refresh_gets_the_same_pair_within_the_grace_window(
    auth_app: AuthApp, territories: Territories
) -> None:
    member = await register_member(auth_app, territories.remote.code)
    first, second = await asyncio.gather(
        auth_app.client().execute(REFRESH, {"token": member.refresh_token}),
        auth_app.client().execute(REFRESH, {"token": member.refresh_token}),
    )
    assert not first.get("errors"), first
    assert not second.get("errors"), second
    assert first["data"]["refreshToken"] == second["data"]["refreshToken"]
    # The session is intact: the new refresh token works.
    new_token = first["data"]["refreshToken"]["refreshToken"]
    await auth_app.client().data(REFRESH, {"token": new_token})


async def test_reuse_after_the_grace_window_revokes_the_whole_session(
    auth_app: AuthApp, territories: Territories
) -> None:
    code = territories.home.code
    member = await register_member(auth_app, code)
    other_session = await _login(auth_app, member)
    pair = (await auth_app.client().data(REFRESH, {"token": member.refresh_token}))["refreshToken"]
    newer = (await auth_app.client().data(REFRESH, {"token": pair["refreshToken"]}))["refreshToken"]
    await _age_rotation(auth_app, code, member.refresh_token, seconds=60)

    error = await auth_app.client().error(REFRESH, {"token": member.refresh_token})
    assert error["extensions"]["code"] == "INVALID_TOKEN"
    assert error["extensions"]["reason"] == "REUSED"
    # Every token descended from that login is dead, at once ...
    for access in (member.access_token, pair["accessToken"], newer["accessToken"]):
        await _refused_within_a_second(auth_app, access)
    error = await auth_app.client().error(REFRESH, {"token": newer["refreshToken"]})
    assert error["extensions"]["code"] == "INVALID_TOKEN"
    # ... while the user's other login is untouched.
    assert (await auth_app.client(other_session["accessToken"]).data(ME))["me"]["id"] == member.id
    async with auth_app.runtime.db.territory_session(code) as session:
        actions = (
            (
                await session.execute(
                    select(AuditEntry.action).where(AuditEntry.resource_type == "session")
                )
            )
            .scalars()
            .all()
        )
        subjects = (
            (
                await session.execute(
                    select(outbox.c.payload["data"]["userId"].astext).where(
                        outbox.c.subject == f"territory.{code}.session.revoked"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert "session.refresh_reuse" in actions
    assert member.id in subjects


async def test_logout_all_ends_every_session(auth_app: AuthApp, territories: Territories) -> None:
    member = await register_member(auth_app, territories.remote.code)
    second = await _login(auth_app, member)
    third = await _login(auth_app, member, agent="tablet/3")
    ended = await auth_app.client(member.access_token).data("mutation { logoutAll }")
    assert ended == {"logoutAll": 3}
    for access in (member.access_token, second["accessToken"], third["accessToken"]):
        await _refused_within_a_second(auth_app, access)
    error = await auth_app.client().error(REFRESH, {"token": third["refreshToken"]})
    assert error["extensions"]["code"] == "INVALID_TOKEN"


async def test_my_sessions_and_revoke_one(auth_app: AuthApp, territories: Territories) -> None:
    member = await register_member(auth_app, territories.home.code)
    tablet = await _login(auth_app, member, agent="tablet/3")
    client = auth_app.client(member.access_token)
    sessions = (await client.data(SESSIONS))["mySessions"]
    assert len(sessions) == 2
    current = [s for s in sessions if s["current"]]
    assert len(current) == 1
    assert current[0]["userAgent"] == "auth-tests/1.0"
    other = next(s for s in sessions if not s["current"])
    assert other["userAgent"] == "tablet/3"
    assert other["ipAddress"] is not None
    assert other["expiresAt"] > other["createdAt"]

    # Nobody else can end it: another user's session id reads as not found.
    stranger = await register_member(auth_app, territories.home.code)
    revoke = "mutation R($id: ID!) { revokeSession(id: $id) }"
    error = await auth_app.client(stranger.access_token).error(revoke, {"id": other["id"]})
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert (await client.data(revoke, {"id": other["id"]})) == {"revokeSession": True}
    await _refused_within_a_second(auth_app, tablet["accessToken"])
    assert [s["id"] for s in (await client.data(SESSIONS))["mySessions"]] == [current[0]["id"]]


async def test_change_password_ends_the_other_sessions(
    auth_app: AuthApp, territories: Territories
) -> None:
    member = await register_member(auth_app, territories.home.code)
    other = await _login(auth_app, member)
    change = """
    mutation C($old: String!, $new: String!) {
      changePassword(currentPassword: $old, newPassword: $new)
    }
    """
    client = auth_app.client(member.access_token)
    error = await client.error(change, {"old": "wrong password here", "new": "a brand new secret"})
    assert error["extensions"]["code"] == "INVALID_CREDENTIALS"
    error = await client.error(change, {"old": member.password, "new": "password1"})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "newPassword"}
    assert await client.data(change, {"old": member.password, "new": "a brand new secret"}) == {
        "changePassword": True
    }
    await _refused_within_a_second(auth_app, other["accessToken"])
    assert (await client.data(ME))["me"]["id"] == member.id  # this session lives on
    error = await auth_app.client().error(
        LOGIN, {"input": {"username": member.username, "password": member.password}}
    )
    assert error["extensions"]["code"] == "INVALID_CREDENTIALS"
    await auth_app.client().data(
        LOGIN, {"input": {"username": member.username, "password": "a brand new secret"}}
    )


async def test_expired_sessions_are_purged_and_refused(
    auth_app: AuthApp, territories: Territories
) -> None:
    from subgraphs.auth.models import Session

    code = territories.home.code
    member = await register_member(auth_app, code)
    old = await _login(auth_app, member)
    async with auth_app.runtime.db.territory_session(code) as session:
        await session.execute(
            update(Session)
            .where(Session.token_hash == token_hash(old["refreshToken"]))
            .values(expires_at=utcnow() - timedelta(seconds=1))
        )
    error = await auth_app.client().error(REFRESH, {"token": old["refreshToken"]})
    assert error["extensions"]["reason"] == "EXPIRED"
    sessions = (await auth_app.client(member.access_token).data(SESSIONS))["mySessions"]
    assert len(sessions) == 1
