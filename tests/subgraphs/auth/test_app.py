"""The served app: JWKS over HTTP and GraphQL, probes, metrics."""

from __future__ import annotations

import base64
import json

from tests.subgraphs.auth.conftest import AuthApp, Territories, register_member


async def test_the_jwks_verifies_issued_tokens(auth_app: AuthApp, territories: Territories) -> None:
    member = await register_member(auth_app, territories.home.code)
    header_part = member.access_token.split(".")[0]
    header = json.loads(base64.urlsafe_b64decode(header_part + "=" * (-len(header_part) % 4)))
    response = await auth_app.http.get("/.well-known/jwks.json")
    assert response.status_code == 200
    document = response.json()
    kids = [key["kid"] for key in document["keys"]]
    assert header["kid"] in kids
    assert header["alg"] == "ES256"
    assert all("d" not in key for key in document["keys"])  # public parameters only
    over_graphql = await auth_app.client().data("{ jwks }")
    assert json.loads(over_graphql["jwks"]) == document


async def test_access_tokens_carry_the_contract_claims(
    auth_app: AuthApp, territories: Territories
) -> None:
    member = await register_member(auth_app, territories.remote.code)
    payload = member.access_token.split(".")[1]
    claims = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
    assert {
        "sub",
        "user_id",
        "username",
        "territory_code",
        "sid",
        "roles",
        "iat",
        "exp",
        "iss",
        "aud",
        "jti",
    } <= set(claims)
    assert claims["user_id"] == member.id
    assert claims["username"] == member.username
    assert claims["territory_code"] == territories.remote.code
    assert claims["exp"] - claims["iat"] == 900
    sessions = await auth_app.client(member.access_token).data("{ mySessions { id current } }")
    assert sessions["mySessions"] == [{"id": claims["sid"], "current": True}]


async def test_probes_and_metrics(auth_app: AuthApp) -> None:
    # Alive; `degraded` may list NATS while the outbox relay is still connecting.
    assert (await auth_app.http.get("/health")).json()["status"] == "ok"
    ready = await auth_app.http.get("/ready")
    assert ready.status_code == 200, ready.text
    assert {"redis"} <= set(ready.json()["checks"])
    await auth_app.client().data("{ __typename }")
    metrics = (await auth_app.http.get("/metrics")).text
    assert "auth_http_requests_total" in metrics
    assert 'route="/graphql"' in metrics
