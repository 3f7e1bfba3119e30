"""The probes of an attacker on the subgraphs' network, against the real services over TCP:
only the router may talk to a subgraph, and what it vouches for (privacy flags in entity
representations, the client's address and agent) cannot come from anyone else."""

from __future__ import annotations

import httpx
import pytest
import websockets
from websockets.exceptions import InvalidStatus

from core.security.router_proof import RouterSigner
from tests.e2e.stack import LOGIN, PASSWORD, Stack
from tests.e2e.test_router_edge import _side_router

pytest_plugins = ["tests.e2e.stack"]

ENTITIES = """
query($reps: [_Any!]!) { _entities(representations: $reps) { ... on User { email fullName } } }
"""


def _leak(user_id: str) -> dict[str, object]:
    """The probe: ask the auth subgraph for a user's email, claiming the user shows it."""
    reps = [{"__typename": "User", "id": user_id, "showEmail": True, "showRealName": True}]
    return {"query": ENTITIES, "variables": {"reps": reps}}


async def test_direct_entities_on_the_auth_subgraph_is_401(stack: Stack) -> None:
    member = await stack.register()
    response = await stack.http.post(f"{stack.urls['auth']}/graphql", json=_leak(member.id))
    assert response.status_code == 401
    assert response.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "email" not in response.text.replace('"email', "")
    # A proof by another key, or a stale one, is no better.
    forged = RouterSigner("not-the-router-key-" + "x" * 32)
    body = httpx.Request("POST", "/", json=_leak(member.id)).read()
    headers = {"content-type": "application/json", **forged.headers("POST", "/graphql", body, {})}
    response = await stack.http.post(f"{stack.urls['auth']}/graphql", content=body, headers=headers)
    assert response.status_code == 401
    # GET (queries over GET) is refused the same way.
    response = await stack.http.get(
        f"{stack.urls['user']}/graphql", params={"query": "{ __typename }"}
    )
    assert response.status_code == 401


async def test_a_privacy_flag_reaches_a_subgraph_only_from_the_router(stack: Stack) -> None:
    member = await stack.register()
    signer = RouterSigner.from_settings(stack.settings)
    # What the router really sends: the flag as the user subgraph holds it (hidden by default).
    honest = httpx.Request(
        "POST",
        "/",
        json={
            "query": ENTITIES,
            "variables": {"reps": [{"__typename": "User", "id": member.id, "showEmail": False}]},
        },
    ).read()
    agent = {"user-agent": "router-under-test"}
    proof = {**agent, **signer.headers("POST", "/graphql", honest, agent)}
    # An attacker who captured that request swaps in `showEmail: true` and keeps the proof.
    tampered = honest.replace(b'"showEmail":false', b'"showEmail":true')
    assert tampered != honest
    response = await stack.http.post(
        f"{stack.urls['auth']}/graphql",
        content=tampered,
        headers={"content-type": "application/json", **proof},
    )
    assert response.status_code == 401
    # The untampered request is answered, and the email stays hidden.
    response = await stack.http.post(
        f"{stack.urls['auth']}/graphql",
        content=honest,
        headers={"content-type": "application/json", **proof},
    )
    assert response.status_code == 200
    assert response.json()["data"]["_entities"] == [{"email": None, "fullName": None}]
    # Through the router the same user reads as hidden to a stranger too.
    stranger = await stack.register()
    body = await stack.graphql(
        "query($id: ID!) { user(id: $id) { email } }",
        {"id": member.id},
        token=stranger.access_token,
    )
    assert body["data"]["user"]["email"] is None, body


async def test_a_websocket_to_a_subgraph_without_proof_is_401(stack: Stack) -> None:
    for service in ("auth", "user"):
        url = stack.urls[service].replace("http://", "ws://") + "/graphql"
        with pytest.raises(InvalidStatus) as refused:
            async with websockets.connect(url, subprotocols=["graphql-transport-ws"]):  # type: ignore[list-item]
                pass
        assert refused.value.response.status_code == 401
        # With the router's proof the upgrade is accepted.
        proof = RouterSigner.from_settings(stack.settings).headers("GET", "/graphql", None, {})
        async with websockets.connect(
            url,
            subprotocols=["graphql-transport-ws"],  # type: ignore[list-item]
            additional_headers=proof,
            user_agent_header=None,  # as the router sends it: no agent of its own
        ) as socket:
            await socket.send('{"type":"connection_init","payload":{}}')
            assert "connection_ack" in str(await socket.recv())


async def test_probes_metrics_and_jwks_stay_open(stack: Stack) -> None:
    for service, paths in {
        "auth": ("/health", "/ready", "/metrics", "/.well-known/jwks.json"),
        "user": ("/health", "/ready", "/metrics"),
    }.items():
        for path in paths:
            response = await stack.http.get(f"{stack.urls[service]}{path}")
            assert response.status_code == 200, (service, path)
    assert "router_proof_refusals_total" in await stack.metrics("auth")
    missing = await stack.http.get(f"{stack.urls['user']}/avatars/{'0' * 32}/64")
    assert missing.status_code == 404  # public (no proof needed), and nothing there


async def test_the_router_vouches_for_address_and_agent(stack: Stack) -> None:
    member = await stack.register()
    body = await stack.graphql(
        LOGIN,
        {"input": {"username": member.username, "password": PASSWORD}},
        headers={"X-Forwarded-For": "203.0.113.80", "User-Agent": "field-phone/2.1"},
    )
    token = body["data"]["login"]["accessToken"]
    sessions = await stack.graphql("{ mySessions { ipAddress userAgent current } }", token=token)
    current = [s for s in sessions["data"]["mySessions"] if s["current"]]
    assert current == [
        {"ipAddress": "203.0.113.80", "userAgent": "field-phone/2.1", "current": True}
    ]


async def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored(stack: Stack) -> None:
    member = await stack.register()
    # A router that trusts no proxy: the client's own X-Forwarded-For must not name it.
    async with _side_router(stack, TRUSTED_PROXIES="") as router:
        response = await router.post(
            "/graphql",
            json={
                "query": LOGIN,
                "variables": {"input": {"username": member.username, "password": PASSWORD}},
            },
            headers={"X-Forwarded-For": "192.0.2.1", "User-Agent": "spoofer/1"},
        )
    token = response.json()["data"]["login"]["accessToken"]
    sessions = await stack.graphql("{ mySessions { ipAddress userAgent current } }", token=token)
    current = [s for s in sessions["data"]["mySessions"] if s["current"]]
    # The in-process client's own address (httpx's ASGI transport reports 127.0.0.1).
    assert current == [{"ipAddress": "127.0.0.1", "userAgent": "spoofer/1", "current": True}]
