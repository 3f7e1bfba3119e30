"""Onboarding a territory: platform admins invite into any territory, territory admins into
theirs, everyone else into their own; the creator is a reference into their home territory,
audited on both sides, and erased with their account; bootstrap works for every territory."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import select

from core.db.provisioning import create_territory
from subgraphs.auth.bootstrap import bootstrap_territory, password_file
from subgraphs.auth.models import AuditEntry, InvitationToken, User
from tests.subgraphs.auth.conftest import (
    LOGIN,
    AuthApp,
    Client,
    Member,
    Territories,
    register_member,
    unique_username,
)

CREATE = """
mutation Create($input: CreateInvitationInput!) {
  createInvitation(input: $input) { id token maxUses remainingUses }
}
"""
MINE = "query Mine($t: ID) { myInvitations(territoryCode: $t) { id token } }"
REVOKE = "mutation Revoke($id: ID!, $t: ID) { revokeInvitation(id: $id, territoryCode: $t) }"
GRANT = """
mutation Grant($u: ID!, $t: ID!) {
  grantTerritoryRole(userId: $u, territoryCode: $t, role: "territory_admin")
}
"""
DELETE = "mutation Delete($p: String!) { deleteMyAccount(password: $p) }"


def _group(territory_code: str | None = None, uses: int = 5) -> dict[str, Any]:
    fields: dict[str, Any] = {"type": "GROUP", "maxUses": uses}
    if territory_code is not None:
        fields["territoryCode"] = territory_code
    return {"input": fields}


async def _platform_admin(auth_app: AuthApp, code: str) -> tuple[Client, str, str]:
    """A new platform admin living in `code`: its client, user id and password."""
    name = unique_username("padmin")
    result = await bootstrap_territory(
        auth_app.settings, code, admin_username=name, db=auth_app.runtime.db
    )
    assert result.admin_password_file is not None
    password = result.admin_password_file.read_text().strip()
    data = await auth_app.client().data(LOGIN, {"input": {"username": name, "password": password}})
    return auth_app.client(data["login"]["accessToken"]), data["login"]["user"]["id"], password


async def _remote_member(
    auth_app: AuthApp, territories: Territories
) -> tuple[Client, str, str, dict[str, Any], Member]:
    """A platform admin of the home territory (client, id, password), the invitation it made
    into the remote territory, and the member who registered there with it."""
    remote = territories.remote.code
    admin, admin_id, password = await _platform_admin(auth_app, territories.home.code)
    invitation = (await admin.data(CREATE, _group(remote)))["createInvitation"]
    member = await register_member(auth_app, remote, invitation=invitation["token"])
    return admin, admin_id, password, invitation, member


async def _audit(auth_app: AuthApp, code: str, resource_id: str) -> list[AuditEntry]:
    async with auth_app.runtime.db.territory_session(code) as session:
        found = await session.execute(
            select(AuditEntry).where(AuditEntry.resource_id == resource_id)
        )
        return list(found.scalars())


async def _user(auth_app: AuthApp, code: str, user_id: str) -> User:
    async with auth_app.runtime.db.territory_session(code) as session:
        user = await session.get(User, uuid.UUID(user_id))
        assert user is not None
        return user


async def test_a_platform_admin_invites_the_first_member_of_another_territory(
    auth_app: AuthApp, territories: Territories
) -> None:
    home, remote = territories.home.code, territories.remote.code
    admin, admin_id, _, invitation, member = await _remote_member(auth_app, territories)

    joined = await _user(auth_app, remote, member.id)
    assert (str(joined.invited_by_user_id), joined.invited_by_territory) == (admin_id, home)
    [stored] = await _audit(auth_app, remote, invitation["id"])
    assert stored.action == "invitation.create"
    assert stored.changes is not None
    assert stored.changes["creatorTerritory"] == home
    assert stored.ip_address is None, "the admin's device details stay in their territory"
    [at_home] = await _audit(auth_app, home, invitation["id"])
    assert at_home.changes is not None
    assert at_home.changes["intoTerritory"] == remote
    assert at_home.ip_address is not None
    [registered] = await _audit(auth_app, remote, member.id)
    assert registered.changes is not None
    assert registered.changes["invitedBy"] == admin_id
    assert registered.changes["invitedByTerritory"] == home

    listed = (await admin.data(MINE, {"t": remote}))["myInvitations"]
    assert [i["id"] for i in listed] == [invitation["id"]]
    at_home_listed = (await admin.data(MINE))["myInvitations"]
    assert invitation["id"] not in [i["id"] for i in at_home_listed]
    revoked = await admin.data(REVOKE, {"id": invitation["id"], "t": remote})
    assert revoked == {"revokeInvitation": True}
    error = await auth_app.client().error(
        "mutation R($i: RegisterInput!) { register(input: $i) { accessToken } }",
        {
            "i": {
                "territoryCode": remote,
                "invitationToken": invitation["token"],
                "username": unique_username(),
                "password": "correct horse battery staple",
            }
        },
    )
    assert error["extensions"]["reason"] == "REVOKED"


async def test_members_invite_into_their_own_territory_only(
    auth_app: AuthApp, territories: Territories
) -> None:
    home, remote = territories.home.code, territories.remote.code
    member = await register_member(auth_app, home)
    client = auth_app.client(member.access_token)

    own = (await client.data(CREATE, _group(home)))["createInvitation"]
    assert own["remainingUses"] == 5
    for operation, variables in ((CREATE, _group(remote)), (MINE, {"t": remote})):
        error = await client.error(operation, variables)
        assert error["extensions"] == {"code": "FORBIDDEN", "field": "territoryCode"}
    # Refused the same whether the territory exists or not: no enumeration.
    error = await client.error(CREATE, _group("no-such-land"))
    assert error["extensions"]["code"] == "FORBIDDEN"
    error = await client.error(CREATE, _group("Not A Code"))
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "territoryCode"}
    error = await client.error(REVOKE, {"id": own["id"], "t": remote})
    assert error["extensions"]["code"] == "FORBIDDEN"


async def test_a_territory_admin_invites_into_the_territory_they_administer(
    auth_app: AuthApp, territories: Territories
) -> None:
    home, remote = territories.home.code, territories.remote.code
    platform_admin, _, _ = await _platform_admin(auth_app, home)
    steward: Member = await register_member(auth_app, home)
    granted = await platform_admin.data(GRANT, {"u": steward.id, "t": remote})
    assert granted == {"grantTerritoryRole": True}
    third = f"t{uuid.uuid4().hex[:6]}"
    await create_territory(
        auth_app.settings, auth_app.runtime.db, code=third, name="Third", type="country"
    )

    client = auth_app.client(steward.access_token)
    invitation = (await client.data(CREATE, _group(remote)))["createInvitation"]
    newcomer = await register_member(auth_app, remote, invitation=invitation["token"])
    assert (await _user(auth_app, remote, newcomer.id)).invited_by_territory == home
    error = await client.error(CREATE, _group(third))
    assert error["extensions"]["code"] == "FORBIDDEN"

    missing = await platform_admin.error(CREATE, _group("no-such-land"))
    assert missing["extensions"] == {"code": "NOT_FOUND", "field": "territoryCode"}
    assert (await platform_admin.data(CREATE, _group(third)))["createInvitation"]["token"]


async def test_erasing_an_admin_removes_their_invitations_in_other_territories(
    auth_app: AuthApp, territories: Territories
) -> None:
    home, remote = territories.home.code, territories.remote.code
    admin, admin_id, password, invitation, member = await _remote_member(auth_app, territories)

    assert await admin.data(DELETE, {"p": password}) == {"deleteMyAccount": True}

    async with auth_app.runtime.db.territory_session(remote) as session:
        left = await session.get(InvitationToken, uuid.UUID(invitation["id"]))
    assert left is None
    joined = await _user(auth_app, remote, member.id)
    assert (joined.invited_by_user_id, joined.invited_by_territory) == (None, None)
    [at_home] = await _audit(auth_app, home, invitation["id"])
    assert (str(at_home.user_id), at_home.ip_address) == (admin_id, None)


@pytest.mark.parametrize("admin_lives_remote", [False, True])
async def test_bootstrap_works_for_every_territory_and_keeps_each_password_file(
    auth_app: AuthApp, territories: Territories, admin_lives_remote: bool
) -> None:
    home, remote = territories.home.code, territories.remote.code
    first_home, other = (remote, home) if admin_lives_remote else (home, remote)
    name = unique_username("root")
    first = await bootstrap_territory(
        auth_app.settings, first_home, admin_username=name, db=auth_app.runtime.db
    )
    assert first.admin_password_file == password_file(auth_app.settings.devstack.dir, name)
    kept = first.admin_password_file.read_text()

    second = await bootstrap_territory(
        auth_app.settings, other, admin_username=name, db=auth_app.runtime.db
    )
    assert (second.admin_created, second.admin_territory) == (False, first_home)
    assert second.invitation_token != first.invitation_token
    assert first.admin_password_file.read_text() == kept
    member = await register_member(auth_app, other, invitation=second.invitation_token)
    joined = await _user(auth_app, other, member.id)
    assert joined.invited_by_territory == first_home
    again = await bootstrap_territory(
        auth_app.settings, other, admin_username=name, db=auth_app.runtime.db
    )
    assert again.invitation_token == second.invitation_token

    another = unique_username("root")
    third = await bootstrap_territory(
        auth_app.settings, other, admin_username=another, db=auth_app.runtime.db
    )
    assert third.admin_created
    assert third.admin_territory == other
    assert third.admin_password_file is not None
    assert third.admin_password_file != first.admin_password_file
    assert first.admin_password_file.read_text() == kept
