"""The public contract (shared/spec/api-contract.graphql) through the router, against the real
auth and user subgraphs: fields from both subgraphs in one query, `@requires` across them,
privacy as another member sees it, the error codes clients rely on, and partial data."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import orjson

from core.security.router_proof import RouterSigner
from router.composition import compose
from router.composition.remote import fetch_subgraphs
from router.server.app import create_app as create_router
from router.supergraph import parse_supergraph
from tests.e2e.stack import LOGIN, ME, PASSWORD, UPDATE_PROFILE, Member, Stack
from tests.router.subgraph_kit import free_port

pytest_plugins = ["tests.e2e.stack"]

USER_FIELDS = "id username email profile { about visibility } followerCount"
PROFILE_OF = f"query Of($id: ID!) {{ user(id: $id) {{ {USER_FIELDS} }} }}"
FOLLOW = "mutation Follow($id: ID!) { follow(userId: $id) { id followerCount viewerFollows } }"
FOLLOWERS = """
query Followers($id: ID!) {
  user(id: $id) { followers(first: 10) { totalCount edges { node { id username } } } }
}
"""


def _code(body: dict[str, Any]) -> str:
    errors = body.get("errors")
    assert errors, body
    return str(errors[0]["extensions"]["code"])


async def _set_profile(stack: Stack, member: Member, **fields: Any) -> None:
    body = await stack.graphql(UPDATE_PROFILE, {"input": fields}, token=member.access_token)
    assert not body.get("errors"), body


async def test_me_reads_both_subgraphs_in_one_query(stack: Stack) -> None:
    member = await stack.register()
    signed_out = await stack.graphql(ME)
    assert signed_out == {"data": {"me": None}}

    await _set_profile(stack, member, about="cartographer")
    body = await stack.graphql(
        "{ me { username email profile { about } followerCount } }", token=member.access_token
    )
    assert body == {
        "data": {
            "me": {
                "username": member.username,
                "email": None,
                "profile": {"about": "cartographer"},
                "followerCount": 0,
            }
        }
    }
    # Field order is the query's, whichever subgraph answered first.
    body = await stack.graphql(
        "{ me { followerCount profile { about } id } }", token=member.access_token
    )
    assert list(body["data"]["me"]) == ["followerCount", "profile", "id"]


async def test_login_right_and_wrong_credentials(stack: Stack) -> None:
    member = await stack.register()
    body = await stack.graphql(
        LOGIN, {"input": {"username": member.username, "password": PASSWORD}}
    )
    assert body["data"]["login"]["user"]["id"] == member.id
    token = body["data"]["login"]["accessToken"]
    me = await stack.graphql("{ me { id } }", token=token)
    assert me["data"]["me"]["id"] == member.id

    wrong = await stack.graphql(
        LOGIN, {"input": {"username": member.username, "password": "not the password"}}
    )
    unknown = await stack.graphql(
        LOGIN, {"input": {"username": f"nobody_{uuid.uuid4().hex[:8]}", "password": PASSWORD}}
    )
    assert _code(wrong) == _code(unknown) == "INVALID_CREDENTIALS"
    assert wrong["errors"][0]["message"] == unknown["errors"][0]["message"]
    assert wrong["data"] is None


async def test_profile_visibility_as_another_member_sees_it(stack: Stack) -> None:
    owner, viewer = await stack.register(), await stack.register()
    await _set_profile(stack, owner, about="hello", visibility="PUBLIC")

    async def seen_by_viewer() -> Any:
        body = await stack.graphql(PROFILE_OF, {"id": owner.id}, token=viewer.access_token)
        assert not body.get("errors"), body
        return body["data"]["user"]["profile"]

    assert await seen_by_viewer() == {"about": "hello", "visibility": "PUBLIC"}

    await _set_profile(stack, owner, visibility="PRIVATE")
    assert await seen_by_viewer() is None
    hidden = await stack.graphql(
        "query P($id: ID!) { profile(userId: $id) { about } }",
        {"id": owner.id},
        token=viewer.access_token,
    )
    assert _code(hidden) == "NOT_FOUND"
    own = await stack.graphql(PROFILE_OF, {"id": owner.id}, token=owner.access_token)
    assert own["data"]["user"]["profile"]["about"] == "hello"

    await _set_profile(stack, owner, visibility="CONNECTIONS")
    assert await seen_by_viewer() is None
    followed = await stack.graphql(FOLLOW, {"id": owner.id}, token=viewer.access_token)
    assert followed["data"]["follow"] == {"id": owner.id, "followerCount": 1, "viewerFollows": True}
    assert await seen_by_viewer() == {"about": "hello", "visibility": "CONNECTIONS"}


async def test_follow_and_followers_across_subgraphs(stack: Stack) -> None:
    star, fan = await stack.register(), await stack.register()
    body = await stack.graphql(FOLLOW, {"id": star.id}, token=fan.access_token)
    assert not body.get("errors"), body
    again = await stack.graphql(FOLLOW, {"id": star.id}, token=fan.access_token)
    assert again["data"]["follow"]["followerCount"] == 1  # a duplicate is not an error
    followers = await stack.graphql(FOLLOWERS, {"id": star.id}, token=star.access_token)
    connection = followers["data"]["user"]["followers"]
    # `username` of each follower comes from the auth subgraph, the edges from the user one.
    assert connection == {
        "totalCount": 1,
        "edges": [{"node": {"id": fan.id, "username": fan.username}}],
    }


async def test_email_follows_show_email_across_the_subgraph_boundary(stack: Stack) -> None:
    address = f"{uuid.uuid4().hex[:10]}@example.org"
    owner_name = f"e2e_{uuid.uuid4().hex[:12]}"
    registered = await stack.graphql(
        "mutation R($input: RegisterInput!) {"
        " register(input: $input) { accessToken user { id } } }",
        {
            "input": {
                "territoryCode": stack.territory.code,
                "invitationToken": stack.invitation,
                "username": owner_name,
                "password": PASSWORD,
                "email": address,
            }
        },
    )
    assert not registered.get("errors"), registered
    owner_id = registered["data"]["register"]["user"]["id"]
    owner_token = registered["data"]["register"]["accessToken"]
    viewer = await stack.register()
    query = "query E($id: ID!) { user(id: $id) { email } }"

    hidden = await stack.graphql(query, {"id": owner_id}, token=viewer.access_token)
    assert hidden == {"data": {"user": {"email": None}}}
    own = await stack.graphql(query, {"id": owner_id}, token=owner_token)
    assert own == {"data": {"user": {"email": address}}}

    body = await stack.graphql(UPDATE_PROFILE, {"input": {"showEmail": True}}, token=owner_token)
    assert not body.get("errors"), body
    shown = await stack.graphql(query, {"id": owner_id}, token=viewer.access_token)
    assert shown == {"data": {"user": {"email": address}}}


async def test_users_by_id_and_username_and_territories(stack: Stack) -> None:
    member = await stack.register()
    by_id = await stack.graphql(
        "query U($id: ID!) { user(id: $id) { username federatedAddress territory { code } } }",
        {"id": member.id},
    )
    assert by_id["data"]["user"] == {
        "username": member.username,
        "federatedAddress": f"{member.username}@{stack.territory.code}",
        "territory": {"code": stack.territory.code},
    }
    by_name = await stack.graphql(
        "query N($name: String!) { userByUsername(username: $name) { id followerCount } }",
        {"name": member.username},
    )
    assert by_name["data"]["userByUsername"] == {"id": member.id, "followerCount": 0}
    missing = await stack.graphql(
        "query U($id: ID!) { user(id: $id) { id } }", {"id": str(uuid.uuid4())}
    )
    assert missing["data"]["user"] is None

    territories = await stack.graphql("{ territories { code name type isActive } }")
    codes = {t["code"] for t in territories["data"]["territories"]}
    assert stack.territory.code in codes
    one = await stack.graphql(
        "query T($code: ID!) { territory(code: $code) { code type } }",
        {"code": stack.territory.code},
    )
    assert one["data"]["territory"]["code"] == stack.territory.code


async def test_validate_invitation(stack: Stack) -> None:
    query = """
    query V($token: String!, $code: ID!) {
      validateInvitation(token: $token, territoryCode: $code) { valid reason type }
    }
    """
    good = await stack.graphql(query, {"token": stack.invitation, "code": stack.territory.code})
    assert good["data"]["validateInvitation"] == {"valid": True, "reason": None, "type": "GROUP"}
    bad = await stack.graphql(query, {"token": "no-such-token", "code": stack.territory.code})
    assert bad["data"]["validateInvitation"]["valid"] is False
    assert bad["data"]["validateInvitation"]["reason"] == "UNKNOWN"


async def test_error_codes_reach_the_client(stack: Stack) -> None:
    unauthenticated = await stack.graphql(UPDATE_PROFILE, {"input": {"about": "x"}})
    assert _code(unauthenticated) == "UNAUTHENTICATED"
    assert unauthenticated["errors"][0]["path"] == ["updateProfile"]

    member = await stack.register()
    bad_url = await stack.graphql(
        UPDATE_PROFILE, {"input": {"websiteUrl": "not a url"}}, token=member.access_token
    )
    assert _code(bad_url) == "BAD_USER_INPUT"
    assert bad_url["errors"][0]["extensions"]["field"] == "websiteUrl"

    weak = await stack.graphql(
        "mutation R($input: RegisterInput!) { register(input: $input) { accessToken } }",
        {
            "input": {
                "territoryCode": stack.territory.code,
                "invitationToken": stack.invitation,
                "username": f"e2e_{uuid.uuid4().hex[:12]}",
                "password": "short",
            }
        },
    )
    assert _code(weak) == "BAD_USER_INPUT"
    assert weak["errors"][0]["extensions"]["field"] == "password"

    unknown = await stack.graphql(FOLLOW, {"id": str(uuid.uuid4())}, token=member.access_token)
    assert _code(unknown) == "NOT_FOUND"
    for error in (unauthenticated, bad_url, unknown):
        text = orjson.dumps(error).decode()
        assert "_entities" not in text
        assert "Traceback" not in text


async def _through_router_without_user_subgraph(
    stack: Stack, query: str, token: str
) -> dict[str, Any]:
    """Ask a second router whose user subgraph URL points at a port nobody listens on."""
    urls = {name: stack.settings.services.subgraph_url(name) for name in ("auth", "user")}
    supergraph = parse_supergraph(
        compose(
            await fetch_subgraphs(
                urls, signer=RouterSigner.from_settings(stack.settings), wait_seconds=5.0
            )
        )
    )
    dead = f"http://127.0.0.1:{free_port()}/graphql"
    router = create_router(
        stack.settings.replace(ROUTER_SUBGRAPH_URLS=orjson.dumps({"user": dead}).decode())
    )
    router.state.use(supergraph)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=router), base_url="http://router"
        ) as client:
            response = await client.post(
                "/graphql", json={"query": query}, headers={"Authorization": f"Bearer {token}"}
            )
    finally:
        await router.state.stop()
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_partial_data_when_a_subgraph_is_down(stack: Stack) -> None:
    member = await stack.register()
    partial = await _through_router_without_user_subgraph(
        stack, "{ me { username profile { about } } }", member.access_token
    )
    assert partial["data"] == {"me": {"username": member.username, "profile": None}}, partial
    [error] = partial["errors"]
    assert error["path"] == ["me"]
    assert error["extensions"] == {
        "code": "SUBREQUEST_HTTP_ERROR",
        "serviceName": "user",
        "retryAfter": 5,
    }

    # followerCount is non-null: its null reaches the nearest nullable parent, `me`.
    nulled = await _through_router_without_user_subgraph(
        stack, "{ me { username followerCount } }", member.access_token
    )
    assert nulled["data"] == {"me": None}, nulled
    assert nulled["errors"][0]["extensions"]["serviceName"] == "user"
