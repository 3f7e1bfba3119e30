"""Registration: all or nothing, races, both pods, global usernames, compensation, audit, events."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import func, select

from core.db.tables import outbox
from subgraphs.auth.models import AuditEntry, InvitationToken, InvitationUse, User, UserIdentity
from subgraphs.auth.tokens import token_hash
from tests.subgraphs.auth.conftest import (
    REGISTER,
    AuthApp,
    Territories,
    group_invitation,
    register_member,
    unique_username,
)


def _input(code: str, token: str, username: str, **extra: Any) -> dict[str, Any]:
    return {
        "input": {
            "territoryCode": code,
            "invitationToken": token,
            "username": username,
            "password": "a long enough passphrase",
            **extra,
        }
    }


async def _users_named(auth_app: AuthApp, code: str, username: str) -> int:
    async with auth_app.runtime.db.territory_session(code) as session:
        count = await session.scalar(
            select(func.count()).where(func.lower(User.username) == username.lower())
        )
    return int(count or 0)


async def _identities_named(auth_app: AuthApp, username: str) -> int:
    async with auth_app.runtime.db.global_session() as session:
        count = await session.scalar(
            select(func.count()).where(func.lower(UserIdentity.username) == username.lower())
        )
    return int(count or 0)


async def test_checks_come_in_the_contract_order(
    auth_app: AuthApp, territories: Territories
) -> None:
    code = territories.home.code
    token = await group_invitation(auth_app, code)
    client = auth_app.client()
    # Unknown territory first, even with everything else wrong too.
    error = await client.error(REGISTER, _input("no-such-land", "inv_x", "!"))
    assert error["extensions"]["code"] == "NOT_FOUND"
    # Then the invitation, before the username.
    error = await client.error(REGISTER, _input(code, "inv_" + "f" * 32, "!"))
    assert error["extensions"]["code"] == "INVALID_TOKEN"
    for bad in ("ab", "x" * 51, "has space", "dash-ed", "ünï"):
        error = await client.error(REGISTER, _input(code, token, bad))
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "username"}, bad
    error = await client.error(REGISTER, _input(code, token, unique_username(), email="nope"))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "email"}


async def test_usernames_are_global_and_case_insensitive(
    auth_app: AuthApp, territories: Territories
) -> None:
    name = unique_username("Alice")
    await register_member(auth_app, territories.home.code, username=name)
    for code in (territories.home.code, territories.remote.code):
        token = await group_invitation(auth_app, code)
        error = await auth_app.client().error(REGISTER, _input(code, token, name.upper()))
        assert error["extensions"] == {"code": "CONFLICT", "field": "username"}
    assert await _identities_named(auth_app, name) == 1


async def test_emails_are_unique_per_territory(auth_app: AuthApp, territories: Territories) -> None:
    email = f"{unique_username()}@example.org"
    await register_member(auth_app, territories.home.code, email=email)
    token = await group_invitation(auth_app, territories.home.code)
    name = unique_username()
    error = await auth_app.client().error(
        REGISTER, _input(territories.home.code, token, name, email=email.upper())
    )
    assert error["extensions"] == {"code": "CONFLICT", "field": "email"}
    assert await _identities_named(auth_app, name) == 0
    # Another territory is another population.
    await register_member(auth_app, territories.remote.code, email=email)


async def test_a_registration_writes_everything_in_its_territory(
    auth_app: AuthApp, territories: Territories
) -> None:
    for territory in (territories.home, territories.remote):
        code = territory.code
        member = await register_member(auth_app, code, email="placed@example.org")
        user_id = uuid.UUID(member.id)
        async with auth_app.runtime.db.territory_session(code) as session:
            user = await session.get(User, user_id)
            uses = (
                (
                    await session.execute(
                        select(InvitationUse).where(InvitationUse.used_by_user_id == user_id)
                    )
                )
                .scalars()
                .all()
            )
            actions = (
                (
                    await session.execute(
                        select(AuditEntry.action).where(AuditEntry.user_id == user_id)
                    )
                )
                .scalars()
                .all()
            )
            subjects = (
                (
                    await session.execute(
                        select(outbox.c.subject).where(
                            outbox.c.payload["data"]["userId"].astext == member.id
                        )
                    )
                )
                .scalars()
                .all()
            )
        async with auth_app.runtime.db.global_session() as session:
            identity = await session.get(UserIdentity, user_id)
        assert user is not None
        assert user.email == "placed@example.org"
        assert len(uses) == 1
        assert "user.register" in actions
        assert f"territory.{code}.user.registered" in subjects
        assert "global.user.registered" in subjects
        # The global identity holds no personal data: a name for routing and a hash.
        assert identity is not None
        assert identity.territory_code == code
        assert identity.territory_user_id == user_id
        assert len(identity.public_key_hash) == 64


async def test_remote_pod_data_stays_on_its_pod(
    auth_app: AuthApp, territories: Territories
) -> None:
    member = await register_member(auth_app, territories.remote.code)
    remote_db = auth_app.runtime.db.engine(territories.remote.pod_id)
    home_db = auth_app.runtime.db.engine(auth_app.runtime.db.default_pod)
    schema = territories.remote.schema
    query = f'SELECT count(*) FROM "{schema}".users WHERE id = :id'  # noqa: S608 - fixed schema
    from sqlalchemy import text

    async with remote_db.connect() as connection:
        assert (await connection.scalar(text(query), {"id": member.id})) == 1
    async with home_db.connect() as connection:
        exists = await connection.scalar(
            text("SELECT count(*) FROM pg_namespace WHERE nspname = :s"), {"s": schema}
        )
        assert exists == 0


async def test_a_failed_remote_registration_releases_the_username(
    auth_app: AuthApp, territories: Territories
) -> None:
    code = territories.remote.code
    email = f"{unique_username()}@example.org"
    await register_member(auth_app, code, email=email)
    name = unique_username()
    token = await group_invitation(auth_app, code)
    # The email conflict is found in the territory transaction, after the global reservation.
    error = await auth_app.client().error(REGISTER, _input(code, token, name, email=email))
    assert error["extensions"]["code"] == "CONFLICT"
    assert await _identities_named(auth_app, name) == 0
    await register_member(auth_app, code, username=name)


async def test_racing_for_one_username_exactly_one_wins(
    auth_app: AuthApp, territories: Territories
) -> None:
    for code in (territories.home.code, territories.remote.code):
        token = await group_invitation(auth_app, code, uses=10)
        name = unique_username()
        results = await asyncio.gather(
            *(auth_app.client().execute(REGISTER, _input(code, token, name)) for _ in range(4))
        )
        winners = [r for r in results if not r.get("errors")]
        losers = [r["errors"][0]["extensions"] for r in results if r.get("errors")]
        assert len(winners) == 1, results
        assert losers == [{"code": "CONFLICT", "field": "username"}] * 3
        assert await _users_named(auth_app, code, name) == 1
        assert await _identities_named(auth_app, name) == 1
        async with auth_app.runtime.db.territory_session(code) as session:
            invitation = (
                await session.execute(
                    select(InvitationToken).where(InvitationToken.token_hash == token_hash(token))
                )
            ).scalar_one()
        assert invitation.current_uses == 1


async def test_racing_for_the_last_invitation_use_exactly_one_wins(
    auth_app: AuthApp, territories: Territories
) -> None:
    code = territories.home.code
    token = await group_invitation(auth_app, code, uses=2)
    await register_member(auth_app, code, invitation=token)
    names = [unique_username() for _ in range(3)]
    results = await asyncio.gather(
        *(auth_app.client().execute(REGISTER, _input(code, token, n)) for n in names)
    )
    winners = [r for r in results if not r.get("errors")]
    assert len(winners) == 1, results
    reasons = [r["errors"][0]["extensions"]["reason"] for r in results if r.get("errors")]
    assert reasons == ["USED_UP", "USED_UP"]
    counts = [await _identities_named(auth_app, n) for n in names]
    assert sorted(counts) == [0, 0, 1]
