"""Entities and field privacy across the subgraph boundary, batched entity resolution, roles,
territories, cross-territory isolation, account erasure and export, bootstrap."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, select

from core.db.tables import outbox
from subgraphs.auth.bootstrap import bootstrap_territory
from subgraphs.auth.models import AuditEntry, UserIdentity
from tests.subgraphs.auth.conftest import (
    LOGIN,
    AuthApp,
    Member,
    Territories,
    register_member,
    unique_username,
)

ENTITIES = """
query Entities($reps: [_Any!]!) {
  _entities(representations: $reps) {
    ... on User { id username email fullName lastLoginAt mfaEnabled territory { code } }
  }
}
"""


def _rep(member: Member, **flags: bool) -> dict[str, Any]:
    return {"__typename": "User", "id": member.id, **flags}


async def _admin_token(auth_app: AuthApp, code: str) -> str:
    result = await bootstrap_territory(auth_app.settings, code, db=auth_app.runtime.db)
    password = result.admin_password_file.read_text().strip()
    data = await auth_app.client().data(
        LOGIN, {"input": {"username": result.admin_username, "password": password}}
    )
    token: str = data["login"]["accessToken"]
    return token


@contextmanager
def count_queries(auth_app: AuthApp) -> Iterator[list[str]]:
    """The SQL statements reading accounts or identities, on any pod, while the block runs
    (the outbox relay and the territory registry cache share the engines and are left out)."""
    statements: list[str] = []

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        if "users" in statement or "user_identities" in statement:
            statements.append(statement)

    engines = [auth_app.runtime.db.engine(pod).sync_engine for pod in auth_app.runtime.db.pods]
    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


async def test_the_sdl_declares_entities_and_the_privacy_requirements(auth_app: AuthApp) -> None:
    sdl = (await auth_app.client().data("{ _service { sdl } }"))["_service"]["sdl"]
    assert 'type User @key(fields: "id")' in sdl
    assert 'type Territory @key(fields: "code")' in sdl
    assert "showEmail: Boolean! @external @inaccessible" in sdl
    assert "showRealName: Boolean! @external @inaccessible" in sdl
    assert 'email: String @requires(fields: "showEmail")' in sdl
    assert 'fullName: String @requires(fields: "showRealName")' in sdl
    assert "https://specs.apollo.dev/federation/v2" in sdl


async def test_private_fields_follow_the_owners_flags(
    auth_app: AuthApp, territories: Territories
) -> None:
    owner = await register_member(
        auth_app, territories.home.code, email="owner@example.org", full_name="Olga Owner"
    )
    viewer = await register_member(auth_app, territories.remote.code)
    stranger = auth_app.client(viewer.access_token)
    reps = [
        _rep(owner),
        _rep(owner, showEmail=True, showRealName=False),
        _rep(owner, showEmail=False, showRealName=True),
    ]
    seen = (await stranger.data(ENTITIES, {"reps": reps}))["_entities"]
    assert [(u["email"], u["fullName"]) for u in seen] == [
        (None, None),
        ("owner@example.org", None),
        (None, "Olga Owner"),
    ]
    assert all(u["lastLoginAt"] is None and u["mfaEnabled"] is False for u in seen)
    # The owner always sees their own, flags or not; so do the territory's admins.
    for token in (owner.access_token, await _admin_token(auth_app, territories.home.code)):
        mine = (await auth_app.client(token).data(ENTITIES, {"reps": [_rep(owner)]}))["_entities"]
        assert (mine[0]["email"], mine[0]["fullName"]) == ("owner@example.org", "Olga Owner")
    # Anonymous callers see only what the flags allow.
    anonymous = (await auth_app.client().data(ENTITIES, {"reps": reps[1:2]}))["_entities"]
    assert anonymous[0]["email"] == "owner@example.org"


async def test_entities_resolve_in_a_constant_number_of_queries(
    auth_app: AuthApp, territories: Territories
) -> None:
    members = [
        await register_member(auth_app, code)
        for code in [territories.home.code] * 6 + [territories.remote.code] * 6
    ]
    unknown = {"__typename": "User", "id": str(uuid.uuid4())}

    async def statements_for(count: int) -> int:
        # Fresh ids each time, so the home-territory cache in Redis does not help.
        # Stepping by 7 through 12 members alternates territories and visits all of them.
        reps = [_rep(members[i * 7 % len(members)]) for i in range(count)] + [unknown]
        await auth_app.runtime.redis.delete(
            *(auth_app.runtime.cache.global_.key(f"home:{m.id}") for m in members)
        )
        with count_queries(auth_app) as statements:
            data = await auth_app.client().data(ENTITIES, {"reps": reps})
        resolved = data["_entities"]
        assert len(resolved) == count + 1
        assert resolved[-1] is None
        assert [u["id"] for u in resolved[:-1]] == [r["id"] for r in reps[:-1]]
        return len(statements)

    few = await statements_for(2)
    many = await statements_for(100)
    assert many == await statements_for(12)
    # One identity lookup plus one query per territory.
    assert many == 3, many
    assert few == 3


async def test_territories_and_their_hierarchy(auth_app: AuthApp, territories: Territories) -> None:
    admin = auth_app.client(await _admin_token(auth_app, territories.home.code))
    create = """
    mutation C($input: CreateTerritoryInput!) {
      createTerritory(input: $input) { code name type parent { code } isActive timezone }
    }
    """
    code = f"{territories.home.code}-city"
    created = await admin.data(
        create,
        {
            "input": {
                "code": code,
                "name": "Test City",
                "type": "COMMUNITY",
                "parentCode": territories.home.code,
                "timezone": "Europe/Copenhagen",
            }
        },
    )
    assert created["createTerritory"] == {
        "code": code,
        "name": "Test City",
        "type": "COMMUNITY",
        "parent": {"code": territories.home.code},
        "isActive": True,
        "timezone": "Europe/Copenhagen",
    }
    error = await admin.error(
        create,
        {
            "input": {
                "code": code,
                "name": "Again",
                "type": "COMMUNITY",
                "parentCode": territories.home.code,
            }
        },
    )
    assert error["extensions"]["code"] == "CONFLICT"
    home = await auth_app.client().data(
        "query T($c: ID!) { territory(code: $c) { code children { code } } }",
        {"c": territories.home.code},
    )
    assert home["territory"]["children"] == [{"code": code}]
    communities = await auth_app.client().data("{ territories(type: COMMUNITY) { code } }")
    assert {"code": code} in communities["territories"]
    countries = await auth_app.client().data("{ territories(type: COUNTRY) { code } }")
    assert {"code": territories.remote.code} in countries["territories"]
    # Only platform admins create territories.
    member = await register_member(auth_app, territories.home.code)
    new = {"input": {"code": f"x{uuid.uuid4().hex[:8]}", "name": "X", "type": "COUNTRY"}}
    error = await auth_app.client(member.access_token).error(create, new)
    assert error["extensions"]["code"] == "FORBIDDEN"
    error = await auth_app.client().error(create, new)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_territory_roles_are_granted_by_admins_only(
    auth_app: AuthApp, territories: Territories
) -> None:
    home, remote = territories.home.code, territories.remote.code
    platform_admin = auth_app.client(await _admin_token(auth_app, home))
    chief = await register_member(auth_app, home)
    helper = await register_member(auth_app, home, email="helper@example.org")
    outsider = await register_member(auth_app, remote, email="outsider@example.org")
    grant = """
    mutation G($u: ID!, $t: ID!, $r: String!) {
      grantTerritoryRole(userId: $u, territoryCode: $t, role: $r)
    }
    """
    error = await auth_app.client(chief.access_token).error(
        grant, {"u": helper.id, "t": home, "r": "moderator"}
    )
    assert error["extensions"]["code"] == "FORBIDDEN"
    granted = await platform_admin.data(grant, {"u": chief.id, "t": home, "r": "territory_admin"})
    assert granted == {"grantTerritoryRole": True}
    # A territory admin grants in their own territory, not in another one.
    chief_client = auth_app.client(chief.access_token)
    assert await chief_client.data(grant, {"u": helper.id, "t": home, "r": "moderator"}) == {
        "grantTerritoryRole": True
    }
    error = await chief_client.error(grant, {"u": outsider.id, "t": remote, "r": "moderator"})
    assert error["extensions"]["code"] == "FORBIDDEN"
    error = await chief_client.error(grant, {"u": helper.id, "t": home, "r": "emperor"})
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "role"}
    # The chief now reads the private fields of the territory's members, not of others.
    reps = [_rep(helper), _rep(outsider)]
    seen = (await chief_client.data(ENTITIES, {"reps": reps}))["_entities"]
    assert [u["email"] for u in seen] == ["helper@example.org", None]
    async with auth_app.runtime.db.territory_session(home) as session:
        grants = (
            (await session.execute(select(AuditEntry).where(AuditEntry.action == "role.grant")))
            .scalars()
            .all()
        )
    assert {(g.resource_id, (g.changes or {}).get("role")) for g in grants} >= {
        (chief.id, "territory_admin"),
        (helper.id, "moderator"),
    }


async def test_a_user_of_one_territory_never_reads_or_changes_another(
    auth_app: AuthApp, territories: Territories
) -> None:
    mine = await register_member(auth_app, territories.home.code)
    theirs = await register_member(auth_app, territories.remote.code, email="their@example.org")
    me = auth_app.client(mine.access_token)
    them = auth_app.client(theirs.access_token)
    their_sessions = (await them.data("{ mySessions { id } }"))["mySessions"]
    error = await me.error(
        "mutation R($id: ID!) { revokeSession(id: $id) }", {"id": their_sessions[0]["id"]}
    )
    assert error["extensions"]["code"] == "NOT_FOUND"
    invitation = (
        await them.data("mutation { createInvitation(input: {type: GROUP, maxUses: 2}) { id } }")
    )["createInvitation"]
    error = await me.error(
        "mutation R($id: ID!) { revokeInvitation(id: $id) }", {"id": invitation["id"]}
    )
    assert error["extensions"]["code"] == "NOT_FOUND"
    assert (await me.data("{ myInvitations { id } }"))["myInvitations"] == []
    seen = (
        await me.data(
            "query U($id: ID!) { user(id: $id) { email fullName lastLoginAt } }", {"id": theirs.id}
        )
    )["user"]
    assert seen == {"email": None, "fullName": None, "lastLoginAt": None}
    # Their session is untouched.
    assert (await them.data("{ me { id } }"))["me"]["id"] == theirs.id
    by_name = await me.data(
        "query U($n: String!) { userByUsername(username: $n) { id federatedAddress } }",
        {"n": theirs.username.upper()},
    )
    assert by_name["userByUsername"] == {
        "id": theirs.id,
        "federatedAddress": f"{theirs.username}@{territories.remote.code}",
    }


async def test_export_my_data(auth_app: AuthApp, territories: Territories) -> None:
    member = await register_member(auth_app, territories.remote.code, email="export@example.org")
    client = auth_app.client(member.access_token)
    await client.data("mutation { createInvitation(input: {type: GROUP, maxUses: 3}) { id } }")
    export = (await client.data("{ exportMyData { userId generatedAt account } }"))["exportMyData"]
    assert export["userId"] == member.id
    account = export["account"]
    assert account["account"]["username"] == member.username
    assert account["account"]["email"] == "export@example.org"
    assert account["identity"]["territoryCode"] == territories.remote.code
    assert len(account["sessions"]) == 1
    assert [i["maxUses"] for i in account["invitations"]] == [3]
    assert {"user.register", "invitation.create"} <= {a["action"] for a in account["auditEntries"]}
    assert account["roles"] == {"platform": [], "territory": []}
    error = await auth_app.client().error("{ exportMyData { userId } }")
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_delete_my_account(auth_app: AuthApp, territories: Territories) -> None:
    for code in (territories.home.code, territories.remote.code):
        member = await register_member(auth_app, code, email="leaving@example.org")
        client = auth_app.client(member.access_token)
        delete = "mutation D($p: String!) { deleteMyAccount(password: $p) }"
        error = await client.error(delete, {"p": "not my password"})
        assert error["extensions"]["code"] == "INVALID_CREDENTIALS"
        assert await client.data(delete, {"p": member.password}) == {"deleteMyAccount": True}
        error = await client.error("{ me { id } }")
        assert error["extensions"]["code"] == "UNAUTHENTICATED"
        error = await auth_app.client().error(
            LOGIN, {"input": {"username": member.username, "password": member.password}}
        )
        assert error["extensions"]["code"] == "INVALID_CREDENTIALS"
        entity = await auth_app.client().data(ENTITIES, {"reps": [_rep(member)]})
        assert entity["_entities"] == [None]
        async with auth_app.runtime.db.global_session() as session:
            assert await session.get(UserIdentity, uuid.UUID(member.id)) is None
        async with auth_app.runtime.db.territory_session(code) as session:
            kept = (
                (
                    await session.execute(
                        select(AuditEntry).where(AuditEntry.user_id == uuid.UUID(member.id))
                    )
                )
                .scalars()
                .all()
            )
            deleted_events = (
                (
                    await session.execute(
                        select(outbox.c.subject).where(
                            outbox.c.payload["data"]["userId"].astext == member.id,
                            outbox.c.subject == "global.user.deleted",
                        )
                    )
                )
                .scalars()
                .all()
            )
        assert {"user.register", "user.delete"} <= {entry.action for entry in kept}
        assert all(e.ip_address is None and e.user_agent is None for e in kept)
        assert deleted_events == ["global.user.deleted"]
        # The name is free again.
        await register_member(auth_app, code, username=member.username)


async def test_bootstrap_is_idempotent(auth_app: AuthApp, territories: Territories) -> None:
    name = unique_username("root")
    code = territories.remote.code
    first = await bootstrap_territory(
        auth_app.settings, code, admin_username=name, db=auth_app.runtime.db
    )
    second = await bootstrap_territory(
        auth_app.settings, code, admin_username=name, db=auth_app.runtime.db
    )
    assert first.admin_created is True
    assert second.admin_created is False
    assert first.invitation_token == second.invitation_token
    password = first.admin_password_file.read_text().strip()
    assert oct(first.admin_password_file.stat().st_mode & 0o777) == "0o600"
    await auth_app.client().data(LOGIN, {"input": {"username": name, "password": password}})
    # The invitation lets people in.
    await register_member(auth_app, code, invitation=first.invitation_token)
