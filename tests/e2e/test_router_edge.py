"""The router at the edge, against the real auth and user subgraphs: bad tokens refused before
any subgraph is called, limits, CSRF and CORS, introspection in production, persisted queries,
trusted documents, uploads, and the client address reaching the auth subgraph's limits."""

from __future__ import annotations

import base64
import hashlib
import hmac
import io
import json
import secrets
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
from jose import jwt as jose_jwt
from opentelemetry.sdk.trace import ReadableSpan
from opentelemetry.trace import SpanKind
from PIL import Image
from prometheus_client.parser import text_string_to_metric_families

from core.security import KeyRing, access_token_claims
from core.security.keys import development_key, generate_private_pem, load_signing_key
from core.security.router_proof import RouterSigner, signing_keys
from router.composition import compose
from router.composition.remote import fetch_subgraphs
from router.edge.authentication import JwksKeys
from router.edge.guard import jwks_url
from router.server.app import create_app as create_router
from router.supergraph import parse_supergraph
from tests.e2e.stack import LOGIN, ME, Member, Stack, eventually

pytest_plugins = ["tests.e2e.stack"]

PREFLIGHT = {"apollo-require-preflight": "true"}


async def _subgraph_calls(stack: Stack) -> float:
    """Requests the router has sent to subgraphs so far (its own counter)."""
    total = 0.0
    for family in text_string_to_metric_families(await stack.metrics("router")):
        if family.name == "router_subgraph_requests":
            total += sum(s.value for s in family.samples if s.name.endswith("_total"))
    return total


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _claims_of(member: Member) -> dict[str, Any]:
    claims = jose_jwt.get_unverified_claims(member.access_token)
    return access_token_claims(
        user_id=claims["user_id"],
        username=claims["username"],
        territory_code=claims["territory_code"],
        session_id=claims["sid"],
        roles=claims["roles"],
    )


def _issuer_ring(stack: Stack) -> KeyRing:
    """The auth subgraph's own signing ring (the devstack key of the test settings)."""
    return KeyRing.from_settings(stack.settings)


def _forged_tokens(stack: Stack, member: Member) -> dict[str, str]:
    settings = stack.settings
    claims = _claims_of(member)
    real = _issuer_ring(stack)
    key = development_key(Path(settings.devstack.dir) / "keys", settings.security.jwt_algorithm)
    now = int(time.time())
    payload = {
        **claims,
        "iat": now,
        "nbf": now,
        "exp": now + 600,
        "iss": settings.security.jwt_issuer,
        "aud": settings.security.jwt_audience,
        "jti": "forged",
    }
    body = _b64(orjson.dumps(payload))
    none_header = _b64(orjson.dumps({"alg": "none", "typ": "JWT", "kid": key.kid}))
    hs_header = _b64(orjson.dumps({"alg": "HS256", "typ": "JWT", "kid": key.kid}))
    signing_input = f"{hs_header}.{body}".encode()
    hs_signature = hmac.new(key.public_pem.encode(), signing_input, hashlib.sha256).digest()
    stranger = KeyRing(
        [load_signing_key(generate_private_pem("ES256"), "ES256")],
        issuer=settings.security.jwt_issuer,
        audience=settings.security.jwt_audience,
    )
    genuine = real.sign(claims, ttl_seconds=600)
    head, _, signature = genuine.split(".")
    tampered_payload = _b64(orjson.dumps({**payload, "roles": ["platform_admin"]}))
    return {
        "expired": real.sign(claims, ttl_seconds=-120),
        "alg none": f"{none_header}.{body}.",
        "HS256 with the public key": f"{hs_header}.{body}.{_b64(hs_signature)}",
        "unknown kid": stranger.sign(claims, ttl_seconds=600),
        "payload changed": f"{head}.{tampered_payload}.{signature}",
        "not a JWT": "garbage",
    }


async def test_bad_tokens_are_refused_before_any_subgraph_is_called(stack: Stack) -> None:
    member = await stack.register()
    ok = await stack.graphql(
        ME, token=_issuer_ring(stack).sign(_claims_of(member), ttl_seconds=600)
    )
    assert ok["data"]["me"]["id"] == member.id  # the forging helper makes valid tokens too
    before = await _subgraph_calls(stack)
    for name, token in _forged_tokens(stack, member).items():
        body = await stack.graphql(ME, token=token)
        assert "data" not in body, name
        assert body["errors"][0]["extensions"] == {"code": "UNAUTHENTICATED"}, name
    assert await _subgraph_calls(stack) == before


async def test_a_revoked_session_is_refused_at_once(stack: Stack) -> None:
    member = await stack.register()
    ended = await stack.graphql("mutation { logoutAll }", token=member.access_token)
    assert ended["data"]["logoutAll"] >= 1, ended
    before = await _subgraph_calls(stack)
    body = await stack.graphql(ME, token=member.access_token)
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"
    assert "data" not in body
    assert await _subgraph_calls(stack) == before
    # Signed out, the same query is an anonymous one and reaches the subgraphs.
    assert await stack.graphql(ME) == {"data": {"me": None}}


async def test_jwks_is_cached_and_refetched_for_an_unknown_kid(stack: Stack) -> None:
    now = [1000.0]
    settings = stack.settings
    keys = JwksKeys(
        jwks_url(settings),
        algorithm=settings.security.jwt_algorithm,
        issuer=settings.security.jwt_issuer,
        audience=settings.security.jwt_audience,
        ttl_seconds=300,
        clock=lambda: now[0],
    )
    ring = await keys.ring()
    assert _issuer_ring(stack).signing_kid in ring.kids
    await keys.ring(ring.kids[0])
    assert keys.fetches == 1  # cached
    now[0] += 1
    await keys.ring("some-new-kid")
    assert keys.fetches == 1  # an unknown kid right after a fetch waits a few seconds
    now[0] += 10
    await keys.ring("some-new-kid")
    assert keys.fetches == 2  # then the issuer is asked again (a key may have been added)
    now[0] += 400
    await keys.ring()
    assert keys.fetches == 3  # and after the cache time in any case
    # The same keys each time: tokens verified earlier stay remembered.
    assert keys.generation == 1


async def test_limits_are_refused_by_name_before_any_subgraph_is_called(stack: Stack) -> None:
    before = await _subgraph_calls(stack)
    deep = "{ me { " + "followers { edges { node { " * 4 + "id" + " } } }" * 4 + " } }"
    body = await stack.graphql(deep)
    assert body["errors"][0]["extensions"]["limit"] == "depth"
    assert "ROUTER_MAX_DEPTH" in body["errors"][0]["message"]
    many = "{ " + " ".join(f"t{i}: territories {{ code }}" for i in range(21)) + " }"
    body = await stack.graphql(many)
    assert body["errors"][0]["extensions"]["limit"] == "root fields"
    assert await _subgraph_calls(stack) == before


async def test_aliased_login_brute_force_is_refused_or_counted(stack: Stack) -> None:
    member = await stack.register()
    attempt = '{{ username: "{0}", password: "guess {1}" }}'
    many = " ".join(
        f"a{i}: login(input: {attempt.format(member.username, i)}) {{ accessToken }}"
        for i in range(31)
    )
    body = await stack.graphql(f"mutation {{ {many} }}")
    assert body["errors"][0]["extensions"]["limit"] == "aliases"
    # Under the alias limit the mutation's fields run in order and the first failed (non-null)
    # login ends the operation: aliasing buys no extra guesses, and each one is counted.
    twelve = " ".join(
        f"a{i}: login(input: {attempt.format(member.username, i)}) {{ accessToken }}"
        for i in range(12)
    )
    limit = stack.settings.auth.login_failures_per_account
    codes: list[str] = []
    for _ in range(limit + 1):
        body = await stack.graphql(f"mutation {{ {twelve} }}")
        assert body["data"] is None
        assert len(body["errors"]) == 1, body
        codes.append(body["errors"][0]["extensions"]["code"])
    assert codes == ["INVALID_CREDENTIALS"] * limit + ["RATE_LIMITED"]


async def test_csrf_style_requests_are_refused_and_a_json_post_passes(stack: Stack) -> None:
    url = f"{stack.urls['router']}/graphql"
    browser = {"origin": "https://evil.example"}
    get = await stack.http.get(url, params={"query": "{ territories { code } }"}, headers=browser)
    assert get.status_code == 400
    assert "Cross-Site Request Forgery" in get.text
    form = await stack.http.post(
        url, files={"operations": (None, '{"query": "{ territories { code } }"}')}, headers=browser
    )
    assert form.status_code == 400
    plain = await stack.http.post(
        url,
        content=b'{"query": "{ territories { code } }"}',
        headers={**browser, "content-type": "text/plain"},
    )
    assert plain.status_code == 415
    json_post = await stack.http.post(
        url, json={"query": "{ territories { code } }"}, headers=browser
    )
    assert json_post.status_code == 200
    assert "territories" in json_post.json()["data"]
    preflighted = await stack.http.get(
        url, params={"query": "{ territories { code } }"}, headers={**browser, **PREFLIGHT}
    )
    assert preflighted.status_code == 200
    assert "territories" in preflighted.json()["data"]


@asynccontextmanager
async def _side_router(stack: Stack, **env: Any) -> AsyncIterator[httpx.AsyncClient]:
    """A second router on the same subgraphs with other settings, in process."""
    urls = {name: stack.settings.services.subgraph_url(name) for name in ("auth", "user")}
    supergraph = parse_supergraph(
        compose(
            await fetch_subgraphs(
                urls, signer=RouterSigner.from_settings(stack.settings), wait_seconds=5.0
            )
        )
    )
    router = create_router(stack.settings.replace(**env))
    router.state.use(supergraph)
    try:
        async with httpx.AsyncClient(
            transport=httpx.ASGITransport(app=router), base_url="http://router"
        ) as client:
            yield client
    finally:
        await router.state.stop()
        await router.edge.close()


INTROSPECTION = "{ __schema { queryType { name } } }"


async def test_introspection_in_production_needs_the_tooling_role(stack: Stack) -> None:
    member = await stack.register()
    ring = _issuer_ring(stack)
    tooling = ring.sign({**_claims_of(member), "roles": ["tooling"]}, ttl_seconds=600)
    async with _side_router(
        stack,
        APP_ENV="production",
        JWT_PRIVATE_KEYS="",
        # Production needs the key the subgraphs check (here the stack's generated one).
        SUBGRAPH_SIGNING_KEYS=",".join(signing_keys(stack.settings)),
        ROUTER_INTROSPECTION_KEY="k3y",
        ROUTER_VERIFY_TOKENS="false",  # ignored in production
    ) as router:
        forged = await router.post(
            "/graphql", json={"query": ME}, headers={"authorization": "Bearer forged"}
        )
        assert forged.json()["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"

        async def introspect(headers: dict[str, str]) -> dict[str, Any]:
            response = await router.post("/graphql", json={"query": INTROSPECTION}, headers=headers)
            body: dict[str, Any] = response.json()
            return body

        anonymous = await introspect({})
        assert anonymous["errors"][0]["extensions"]["code"] == "INTROSPECTION_DISABLED"
        member_only = await introspect({"authorization": f"Bearer {member.access_token}"})
        assert member_only["errors"][0]["extensions"]["code"] == "INTROSPECTION_DISABLED"
        wrong_key = await introspect({"x-introspection-key": "nope"})
        assert "errors" in wrong_key
        expected = {"data": {"__schema": {"queryType": {"name": "Query"}}}}
        assert await introspect({"authorization": f"Bearer {tooling}"}) == expected
        assert await introspect({"x-introspection-key": "k3y"}) == expected
        # Field suggestions are not given away in production either.
        typo = await router.post("/graphql", json={"query": "{ territorys { code } }"})
        assert "Did you mean" not in typo.text
    async with _side_router(stack) as router:  # the test profile: introspection allowed
        response = await router.post("/graphql", json={"query": INTROSPECTION})
        assert response.json() == {"data": {"__schema": {"queryType": {"name": "Query"}}}}


async def test_cors_preflight_names_only_configured_origins(stack: Stack) -> None:
    async with _side_router(stack, ROUTER_CORS_ORIGINS="https://app.example") as router:
        asked = {
            "origin": "https://app.example",
            "access-control-request-method": "POST",
            "access-control-request-headers": "content-type, authorization",
        }
        preflight = await router.options("/graphql", headers=asked)
        assert preflight.status_code == 204
        assert preflight.headers["access-control-allow-origin"] == "https://app.example"
        assert preflight.headers["access-control-allow-credentials"] == "true"
        assert "authorization" in preflight.headers["access-control-allow-headers"]
        stranger = await router.options(
            "/graphql", headers={**asked, "origin": "https://x.example"}
        )
        assert "access-control-allow-origin" not in stranger.headers
        post = await router.post(
            "/graphql",
            json={"query": "{ territories { code } }"},
            headers={"origin": "https://app.example"},
        )
        assert post.headers["access-control-allow-origin"] == "https://app.example"


def _apq(query: str | None, digest: str) -> dict[str, Any]:
    found: dict[str, Any] = {"extensions": {"persistedQuery": {"version": 1, "sha256Hash": digest}}}
    if query is not None:
        found["query"] = query
    return found


async def test_automatic_persisted_queries_round_trip(stack: Stack) -> None:
    url = f"{stack.urls['router']}/graphql"
    query = f'{{ territory(code: "{stack.territory.code}") {{ code }} }}'
    digest = hashlib.sha256(query.encode()).hexdigest()
    expected = {"data": {"territory": {"code": stack.territory.code}}}

    miss = (await stack.http.post(url, json=_apq(None, digest))).json()
    assert miss["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    registered = (await stack.http.post(url, json=_apq(query, digest))).json()
    assert registered == expected
    hit = (await stack.http.post(url, json=_apq(None, digest))).json()
    assert hit == expected
    over_get = await stack.http.get(
        url,
        params={"extensions": json.dumps(_apq(None, digest)["extensions"])},
        headers=PREFLIGHT,
    )
    assert over_get.json() == expected
    wrong = (await stack.http.post(url, json=_apq("{ territories { code } }", digest))).json()
    assert wrong["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_HASH_MISMATCH"


async def test_trusted_documents_mode_refuses_unknown_documents(
    stack: Stack, tmp_path: Path
) -> None:
    known = "{ territories { code } }"
    digest = hashlib.sha256(known.encode()).hexdigest()
    manifest = tmp_path / "trusted.json"
    manifest.write_text(json.dumps({digest: known}))
    async with _side_router(stack, ROUTER_TRUSTED_DOCUMENTS_PATH=str(manifest)) as router:
        by_hash = await router.post("/graphql", json=_apq(None, digest))
        assert "territories" in by_hash.json()["data"]
        by_text = await router.post("/graphql", json={"query": known})
        assert "territories" in by_text.json()["data"]
        unknown = await router.post("/graphql", json={"query": "{ territories { name } }"})
        assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_IN_LIST"
        not_listed = await router.post(
            "/graphql", json=_apq("{ territories { name } }", hashlib.sha256(b"x").hexdigest())
        )
        assert not_listed.json()["errors"][0]["extensions"]["code"] == (
            "PERSISTED_QUERY_NOT_IN_LIST"
        )


def _png() -> bytes:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 48), (30, 120, 200)).save(buffer, format="PNG")
    return buffer.getvalue()


async def test_an_avatar_upload_reaches_the_user_subgraph(stack: Stack) -> None:
    member = await stack.register()
    operations = {
        "query": "mutation Up($file: Upload!) { uploadAvatar(file: $file) { avatarUrl } }",
        "variables": {"file": None},
    }
    response = await stack.http.post(
        f"{stack.urls['router']}/graphql",
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})},
        files={"0": ("me.png", _png(), "image/png")},
        headers={**PREFLIGHT, "authorization": f"Bearer {member.access_token}"},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert not body.get("errors"), body
    avatar = body["data"]["uploadAvatar"]["avatarUrl"]
    assert avatar
    me = await stack.graphql("{ me { profile { avatarUrl } } }", token=member.access_token)
    assert me["data"]["me"]["profile"]["avatarUrl"] == avatar


async def test_the_client_address_reaches_the_auth_subgraph(stack: Stack) -> None:
    """Per-IP login limits count the client behind the router, not the router itself."""
    member = await stack.register()
    body = await stack.graphql(
        LOGIN,
        {"input": {"username": member.username, "password": "correct horse battery staple"}},
        headers={"X-Forwarded-For": "203.0.113.77"},
    )
    assert not body.get("errors"), body
    token = body["data"]["login"]["accessToken"]
    sessions = await stack.graphql("{ mySessions { ipAddress current } }", token=token)
    current = [s for s in sessions["data"]["mySessions"] if s["current"]]
    assert current == [{"ipAddress": "203.0.113.77", "current": True}]


async def test_one_request_is_one_trace_request_plan_fetches_and_both_subgraphs(
    stack: Stack,
) -> None:
    member = await stack.register()
    trace_id = secrets.randbits(128) | 1
    traceparent = f"00-{trace_id:032x}-{secrets.randbits(64) | 1:016x}-01"
    body = await stack.graphql(
        "query Mine { me { username followerCount } }",
        token=member.access_token,
        headers={"traceparent": traceparent},
    )
    assert body["data"]["me"]["username"] == member.username

    def named(spans: list[ReadableSpan], name: str) -> list[ReadableSpan]:
        return [s for s in spans if s.name == name]

    async def complete() -> bool:
        spans = stack.spans.of_trace(trace_id)
        return sum(1 for s in spans if s.kind == SpanKind.SERVER) == 3

    await eventually(complete, what="the router's and both subgraphs' server spans")
    spans = stack.spans.of_trace(trace_id)
    by_id = {s.context.span_id: s for s in spans if s.context is not None}
    [plan] = named(spans, "execute plan")
    assert plan.attributes is not None
    assert plan.attributes["graphql.operation.name"] == "Mine"
    assert plan.attributes["router.plan.fetches"] == 2
    assert plan.parent is not None
    router = by_id[plan.parent.span_id]
    assert router.kind == SpanKind.SERVER
    assert router.resource.attributes["service.name"] == "router"
    for subgraph in ("auth", "user"):
        [fetch] = named(spans, f"fetch {subgraph}")
        assert fetch.parent is not None
        assert fetch.parent.span_id == plan.context.span_id
        [server] = [
            s
            for s in spans
            if s.kind == SpanKind.SERVER and s.resource.attributes["service.name"] == subgraph
        ]
        assert server.parent is not None
        assert server.parent.span_id == fetch.context.span_id


async def test_bodies_over_1_mb_are_refused_except_uploads(stack: Stack) -> None:
    url = f"{stack.urls['router']}/graphql"
    padding = " " * 1_000_001
    big = await stack.http.post(
        url,
        content=orjson.dumps({"query": "{ territories { code }" + padding + "}"}),
        headers={"content-type": "application/json"},
    )
    assert big.status_code == 413
    member = await stack.register()
    noise = Image.frombytes("RGB", (700, 700), secrets.token_bytes(700 * 700 * 3))
    buffer = io.BytesIO()
    noise.save(buffer, format="PNG")
    assert len(buffer.getvalue()) > 1_000_000
    operations = {
        "query": "mutation Up($file: Upload!) { uploadAvatar(file: $file) { avatarUrl } }",
        "variables": {"file": None},
    }
    response = await stack.http.post(
        url,
        data={"operations": json.dumps(operations), "map": json.dumps({"0": ["variables.file"]})},
        files={"0": ("big.png", buffer.getvalue(), "image/png")},
        headers={**PREFLIGHT, "authorization": f"Bearer {member.access_token}"},
    )
    assert response.status_code == 200, response.text
    assert response.json()["data"]["uploadAvatar"]["avatarUrl"]


async def _refusals(stack: Stack, reason: str) -> float:
    for family in text_string_to_metric_families(await stack.metrics("router")):
        if family.name == "router_edge_refusals":
            for sample in family.samples:
                if sample.name.endswith("_total") and sample.labels.get("reason") == reason:
                    return float(sample.value)
    return 0.0


async def test_metrics_count_the_edge_refusals_by_reason(stack: Stack) -> None:
    url = f"{stack.urls['router']}/graphql"
    before = {
        reason: await _refusals(stack, reason)
        for reason in ("unauthenticated", "operation_limit", "csrf", "persisted_query")
    }
    await stack.graphql(ME, token="garbage")
    await stack.graphql("{ " + " ".join(f"t{i}: territories {{ code }}" for i in range(21)) + " }")
    await stack.http.get(url, params={"query": "{ territories { code } }"})
    await stack.http.post(url, json=_apq(None, hashlib.sha256(b"never sent").hexdigest()))
    for reason, count in before.items():
        assert await _refusals(stack, reason) == count + 1, reason
    text = await stack.metrics("router")
    for name in ("router_plan_cache_hits", "router_subgraph_request_duration_seconds_bucket"):
        assert name in text
