"""The original auth service's 18 auth and invitation test cases, through the real app."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import update

from subgraphs.auth.models import InvitationToken
from subgraphs.auth.runtime import utcnow
from subgraphs.auth.tokens import token_hash
from tests.subgraphs.auth.conftest import (
    LOGIN,
    REGISTER,
    AuthApp,
    Territories,
    group_invitation,
    register_member,
    unique_username,
)

ME = "{ me { id username email federatedAddress territory { code } } }"
CREATE_INVITATION = """
mutation Create($input: CreateInvitationInput!) {
  createInvitation(input: $input) {
    id token type email maxUses currentUses remainingUses expiresAt isActive
  }
}
"""
VALIDATE = """
query Validate($token: String!, $code: ID!, $email: String) {
  validateInvitation(token: $token, territoryCode: $code, email: $email) {
    valid reason type email expiresAt remainingUses
  }
}
"""
REFRESH = """
mutation Refresh($token: String!) {
  refreshToken(refreshToken: $token) { accessToken refreshToken user { id } }
}
"""


def _register_input(code: str, token: str, **extra: object) -> dict[str, object]:
    return {
        "input": {
            "territoryCode": code,
            "invitationToken": token,
            "username": unique_username(),
            "password": "a long enough passphrase",
            **extra,
        }
    }


async def test_register_success(auth_app: AuthApp, territories: Territories) -> None:
    code = territories.home.code
    token = await group_invitation(auth_app, code)
    variables = _register_input(code, token, email="New.Member@example.org", fullName="New Member")
    data = await auth_app.client().data(REGISTER, variables)
    payload = data["register"]
    assert payload["tokenType"] == "Bearer"
    assert payload["expiresIn"] == 900
    assert payload["accessToken"].count(".") == 2
    assert payload["refreshToken"].startswith(code + ".")
    user = payload["user"]
    username = variables["input"]["username"]  # type: ignore[index]
    assert user["username"] == username
    assert user["federatedAddress"] == f"{username}@{code}"
    assert user["territory"] == {"code": code}
    # The new member sees their own personal fields.
    me = await auth_app.client(payload["accessToken"]).data(ME)
    assert me["me"]["email"] == "New.Member@example.org"


async def test_register_with_unknown_invitation(
    auth_app: AuthApp, territories: Territories
) -> None:
    error = await auth_app.client().error(
        REGISTER, _register_input(territories.home.code, "inv_" + "0" * 32)
    )
    assert error["extensions"]["code"] == "INVALID_TOKEN"
    assert error["extensions"]["reason"] == "UNKNOWN"


async def test_register_with_expired_invitation(
    auth_app: AuthApp, territories: Territories
) -> None:
    code = territories.home.code
    token = await group_invitation(auth_app, code)
    async with auth_app.runtime.db.territory_session(code) as session:
        await session.execute(
            update(InvitationToken)
            .where(InvitationToken.token_hash == token_hash(token))
            .values(expires_at=utcnow() - timedelta(minutes=1))
        )
    error = await auth_app.client().error(REGISTER, _register_input(code, token))
    assert error["extensions"] == {
        "code": "INVALID_TOKEN",
        "reason": "EXPIRED",
        "field": "invitationToken",
    }


async def test_login_success(auth_app: AuthApp, territories: Territories) -> None:
    member = await register_member(auth_app, territories.home.code)
    data = await auth_app.client().data(
        LOGIN, {"input": {"username": member.username.upper(), "password": member.password}}
    )
    assert data["login"]["user"] == {"id": member.id, "username": member.username}
    me = await auth_app.client(data["login"]["accessToken"]).data(ME)
    assert me["me"]["id"] == member.id


async def test_login_wrong_password(auth_app: AuthApp, territories: Territories) -> None:
    member = await register_member(auth_app, territories.home.code)
    error = await auth_app.client().error(
        LOGIN, {"input": {"username": member.username, "password": "not the password"}}
    )
    assert error["extensions"]["code"] == "INVALID_CREDENTIALS"
    assert error["message"] == "Invalid username or password"


async def test_login_unknown_user(auth_app: AuthApp, territories: Territories) -> None:
    error = await auth_app.client().error(
        LOGIN, {"input": {"username": unique_username("ghost"), "password": "whatever it is"}}
    )
    # Same code and message as a wrong password: nothing tells the two apart.
    assert error["extensions"]["code"] == "INVALID_CREDENTIALS"
    assert error["message"] == "Invalid username or password"


async def test_refresh_success(auth_app: AuthApp, territories: Territories) -> None:
    member = await register_member(auth_app, territories.home.code)
    data = await auth_app.client().data(REFRESH, {"token": member.refresh_token})
    pair = data["refreshToken"]
    assert pair["user"]["id"] == member.id
    assert pair["refreshToken"] != member.refresh_token
    me = await auth_app.client(pair["accessToken"]).data(ME)
    assert me["me"]["id"] == member.id


async def test_refresh_with_invalid_token(auth_app: AuthApp, territories: Territories) -> None:
    for token in ("garbage", f"{territories.home.code}.{'x' * 43}", f"nowhere.{'x' * 43}"):
        error = await auth_app.client().error(REFRESH, {"token": token})
        assert error["extensions"]["code"] == "INVALID_TOKEN"
        assert error["extensions"]["reason"] == "UNKNOWN"


async def test_logout(auth_app: AuthApp, territories: Territories) -> None:
    member = await register_member(auth_app, territories.home.code)
    logout = "mutation Out($t: String!) { logout(refreshToken: $t) }"
    assert (await auth_app.client().data(logout, {"t": member.refresh_token})) == {"logout": True}
    # The session is gone: its refresh token is unknown and its access token refused at once.
    error = await auth_app.client().error(REFRESH, {"token": member.refresh_token})
    assert error["extensions"]["code"] == "INVALID_TOKEN"
    error = await auth_app.client(member.access_token).error(ME)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
    error = await auth_app.client().error(logout, {"t": member.refresh_token})
    assert error["extensions"]["code"] == "INVALID_TOKEN"


async def test_me_authenticated(auth_app: AuthApp, territories: Territories) -> None:
    member = await register_member(auth_app, territories.home.code, email="me@example.org")
    me = (await auth_app.client(member.access_token).data(ME))["me"]
    assert me == {
        "id": member.id,
        "username": member.username,
        "email": "me@example.org",
        "federatedAddress": f"{member.username}@{territories.home.code}",
        "territory": {"code": territories.home.code},
    }


async def test_me_unauthenticated(auth_app: AuthApp, territories: Territories) -> None:
    assert await auth_app.client().data(ME) == {"me": None}
    error = await auth_app.client("not-a-jwt").error(ME)
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_create_invitation_authenticated(auth_app: AuthApp, territories: Territories) -> None:
    member = await register_member(auth_app, territories.home.code)
    client = auth_app.client(member.access_token)
    single = (
        await client.data(
            CREATE_INVITATION,
            {"input": {"type": "SINGLE_USE", "email": "friend@example.org", "expiresInDays": 7}},
        )
    )["createInvitation"]
    assert single["token"].startswith("inv_")
    assert len(single["token"]) == 36
    assert single["type"] == "SINGLE_USE"
    assert (single["maxUses"], single["currentUses"], single["remainingUses"]) == (1, 0, 1)
    assert single["isActive"] is True
    group = (await client.data(CREATE_INVITATION, {"input": {"type": "GROUP", "maxUses": 5}}))[
        "createInvitation"
    ]
    assert (group["type"], group["email"], group["maxUses"]) == ("GROUP", None, 5)
    # The original's limits.
    for bad, field in (
        ({"type": "SINGLE_USE"}, "email"),
        ({"type": "GROUP", "maxUses": 1}, "maxUses"),
        ({"type": "GROUP", "maxUses": 1001}, "maxUses"),
        ({"type": "GROUP", "maxUses": 5, "email": "x@example.org"}, "email"),
        ({"type": "GROUP", "maxUses": 5, "expiresInDays": 366}, "expiresInDays"),
        ({"type": "GROUP", "maxUses": 5, "expiresInDays": 0}, "expiresInDays"),
    ):
        error = await client.error(CREATE_INVITATION, {"input": bad})
        assert error["extensions"]["code"] == "BAD_USER_INPUT"
        assert error["extensions"]["field"] == field


async def test_create_invitation_unauthenticated(
    auth_app: AuthApp, territories: Territories
) -> None:
    error = await auth_app.client().error(
        CREATE_INVITATION, {"input": {"type": "GROUP", "maxUses": 5}}
    )
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_list_invitations_newest_first(auth_app: AuthApp, territories: Territories) -> None:
    member = await register_member(auth_app, territories.home.code)
    client = auth_app.client(member.access_token)
    made = []
    for uses in (2, 3, 4):
        created = await client.data(
            CREATE_INVITATION, {"input": {"type": "GROUP", "maxUses": uses}}
        )
        made.append(created["createInvitation"]["id"])
    listed = await client.data("{ myInvitations { id maxUses uses { usedAt } } }")
    assert [i["id"] for i in listed["myInvitations"]] == list(reversed(made))
    # Someone else's list does not show them.
    other = await register_member(auth_app, territories.home.code)
    assert (await auth_app.client(other.access_token).data("{ myInvitations { id } }")) == {
        "myInvitations": []
    }


async def test_revoke_invitation(auth_app: AuthApp, territories: Territories) -> None:
    code = territories.home.code
    creator = await register_member(auth_app, code)
    other = await register_member(auth_app, code)
    created = await auth_app.client(creator.access_token).data(
        CREATE_INVITATION, {"input": {"type": "GROUP", "maxUses": 3}}
    )
    invitation = created["createInvitation"]
    revoke = "mutation R($id: ID!) { revokeInvitation(id: $id) }"
    # Only the creator may revoke; others are told it does not exist.
    error = await auth_app.client(other.access_token).error(revoke, {"id": invitation["id"]})
    assert error["extensions"]["code"] == "NOT_FOUND"
    done = await auth_app.client(creator.access_token).data(revoke, {"id": invitation["id"]})
    assert done == {"revokeInvitation": True}
    result = await auth_app.client().data(VALIDATE, {"token": invitation["token"], "code": code})
    assert result["validateInvitation"]["valid"] is False
    assert result["validateInvitation"]["reason"] == "REVOKED"
    error = await auth_app.client().error(REGISTER, _register_input(code, invitation["token"]))
    assert error["extensions"]["reason"] == "REVOKED"


async def test_validate_maxed_out_invitation(auth_app: AuthApp, territories: Territories) -> None:
    code = territories.home.code
    token = await group_invitation(auth_app, code, uses=2)
    before = await auth_app.client().data(VALIDATE, {"token": token, "code": code})
    assert before["validateInvitation"] == {
        "valid": True,
        "reason": None,
        "type": "GROUP",
        "email": None,
        "expiresAt": before["validateInvitation"]["expiresAt"],
        "remainingUses": 2,
    }
    await register_member(auth_app, code, invitation=token)
    await register_member(auth_app, code, invitation=token)
    after = await auth_app.client().data(VALIDATE, {"token": token, "code": code})
    assert after["validateInvitation"]["valid"] is False
    assert after["validateInvitation"]["reason"] == "USED_UP"
    error = await auth_app.client().error(REGISTER, _register_input(code, token))
    assert error["extensions"]["reason"] == "USED_UP"


async def test_validate_revoked_invitation(auth_app: AuthApp, territories: Territories) -> None:
    code = territories.home.code
    token = await group_invitation(auth_app, code, uses=5)
    async with auth_app.runtime.db.territory_session(code) as session:
        await session.execute(
            update(InvitationToken)
            .where(InvitationToken.token_hash == token_hash(token))
            .values(is_active=False)
        )
    result = await auth_app.client().data(VALIDATE, {"token": token, "code": code})
    assert result["validateInvitation"] == {
        "valid": False,
        "reason": "REVOKED",
        "type": None,
        "email": None,
        "expiresAt": None,
        "remainingUses": None,
    }


async def test_single_use_invitation_email_mismatch(
    auth_app: AuthApp, territories: Territories
) -> None:
    code = territories.home.code
    creator = await register_member(auth_app, code)
    created = await auth_app.client(creator.access_token).data(
        CREATE_INVITATION, {"input": {"type": "SINGLE_USE", "email": "Invitee@Example.org"}}
    )
    token = created["createInvitation"]["token"]
    mismatch = await auth_app.client().data(
        VALIDATE, {"token": token, "code": code, "email": "someone@example.org"}
    )
    assert mismatch["validateInvitation"]["reason"] == "EMAIL_MISMATCH"
    error = await auth_app.client().error(
        REGISTER, _register_input(code, token, email="someone@example.org")
    )
    assert error["extensions"]["reason"] == "EMAIL_MISMATCH"
    # The address matches case-insensitively, and then the single use is spent.
    matching = await auth_app.client().data(
        VALIDATE, {"token": token, "code": code, "email": "invitee@example.org"}
    )
    assert matching["validateInvitation"]["valid"] is True
    invitee = await register_member(auth_app, code, invitation=token, email="invitee@example.org")
    listed = await auth_app.client(creator.access_token).data(
        "{ myInvitations { token currentUses isActive uses { user { id username } } } }"
    )
    mine = next(i for i in listed["myInvitations"] if i["token"] == token)
    assert mine["currentUses"] == 1
    assert mine["isActive"] is False
    assert mine["uses"] == [{"user": {"id": invitee.id, "username": invitee.username}}]
