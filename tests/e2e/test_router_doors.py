"""One pipeline behind every door: the same bad documents sent over HTTP POST and GET,
graphql-transport-ws, subscriptions-transport-ws, GraphQL over SSE (POST and GET) and multipart
HTTP get the same error code and message; queries and mutations run over WebSocket and SSE."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from websockets.asyncio.client import connect
from websockets.exceptions import ConnectionClosed

from core.security.router_proof import signing_keys
from tests.e2e.stack import Member, Stack, eventually, served_router
from tests.e2e.test_realtime import TransportWs, multipart_parts, sse_events

pytest_plugins = ["tests.e2e.stack"]

# Small limits, so each is easy to exceed with a document of our schema.
LIMITS = {
    "ROUTER_MAX_DEPTH": 4,
    "ROUTER_MAX_ALIASES": 2,
    "ROUTER_MAX_ROOT_FIELDS": 2,
    "ROUTER_MAX_TOKENS": 300,
    "ROUTER_MAX_COST": 50,
    "ROUTER_MAX_DIRECTIVES": 3,
}
TERRITORIES = "{ territories { code } }"
ME = "{ me { id username } }"
FOLLOW = "mutation Follow($id: ID!) { follow(userId: $id) { id } }"

BAD_DOCUMENTS: dict[str, tuple[str, str]] = {
    # name: (document, the code every door answers)
    "unknown field": ("{ territoriez { code } }", "GRAPHQL_VALIDATION_FAILED"),
    "syntax": ("{ territories { code }", "GRAPHQL_PARSE_FAILED"),
    "depth": (
        "{ territories { parent { parent { parent { parent { code } } } } } }",
        "OPERATION_LIMIT_EXCEEDED",
    ),
    "aliases": ("{ me { a: id b: id c: id } }", "OPERATION_LIMIT_EXCEEDED"),
    "root fields": ("{ me { id } territories { code } jwks }", "OPERATION_LIMIT_EXCEEDED"),
    "tokens": ("{ me { " + "id " * 400 + "} }", "OPERATION_LIMIT_EXCEEDED"),
    "cost": (
        '{ searchUsers(query: "a", first: 30) { edges { node { id } } } }',
        "OPERATION_LIMIT_EXCEEDED",
    ),
    "directives": (
        "{ __typename @skip(if: false) @aa @aa @aa }",
        "OPERATION_LIMIT_EXCEEDED",
    ),
    "introspection without tooling rights": (
        "{ __schema { queryType { name } } }",
        "INTROSPECTION_DISABLED",
    ),
    "anonymous where a viewer is needed": ("{ mySessions { id } }", "UNAUTHENTICATED"),
}


# -- one client per door: each returns the GraphQL errors the door answered --------------------
Door = Callable[[str, dict[str, Any]], Awaitable[list[dict[str, Any]]]]


async def _http_post(url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(f"{url}/graphql", json=body)
    errors: list[dict[str, Any]] = response.json()["errors"]
    return errors


async def _http_get(url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    params = {"query": body["query"], "variables": json.dumps(body.get("variables") or {})}
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.get(
            f"{url}/graphql", params=params, headers={"apollo-require-preflight": "1"}
        )
    errors: list[dict[str, Any]] = response.json()["errors"]
    return errors


async def _ws(url: str, body: dict[str, Any], *, legacy: bool) -> list[dict[str, Any]]:
    client = await TransportWs.open(url.replace("http://", "ws://") + "/graphql", legacy=legacy)
    try:
        await client.subscribe("1", body["query"], body.get("variables"))
        message = await client.receive()
        assert message["id"] == "1"
        if message["type"] in {"next", "data"}:
            errors: list[dict[str, Any]] = message["payload"]["errors"]
            return errors
        assert message["type"] == "error", message
        payload = message["payload"]
        return [payload] if legacy else payload  # the legacy protocol carries one error
    finally:
        await client.close()


async def _transport_ws(url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    return await _ws(url, body, legacy=False)


async def _legacy_ws(url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    return await _ws(url, body, legacy=True)


async def _sse(url: str, body: dict[str, Any], *, method: str) -> list[dict[str, Any]]:
    headers = {"accept": "text/event-stream"}
    request: dict[str, Any] = {"json": body}
    if method == "GET":
        request = {
            "params": {"query": body["query"], "variables": json.dumps(body.get("variables") or {})}
        }
    async with (
        httpx.AsyncClient(timeout=30) as http,
        http.stream(method, f"{url}/graphql", headers=headers, **request) as response,
    ):
        if not response.headers["content-type"].startswith("text/event-stream"):
            errors: list[dict[str, Any]] = orjson.loads(await response.aread())["errors"]
            return errors
        async for line in response.aiter_lines():
            if line.startswith("data:") and line.removeprefix("data:").strip():
                found: list[dict[str, Any]] = orjson.loads(line.removeprefix("data:"))["errors"]
                return found
    raise AssertionError("the stream ended without an event")


async def _sse_post(url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    return await _sse(url, body, method="POST")


async def _sse_get(url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    return await _sse(url, body, method="GET")


async def _multipart(url: str, body: dict[str, Any]) -> list[dict[str, Any]]:
    async with httpx.AsyncClient(timeout=30) as http:
        async for part in multipart_parts(http, url, body, None):
            errors: list[dict[str, Any]] = (part.get("payload") or part)["errors"]
            return errors
    raise AssertionError("the multipart response ended without a part")


DOORS: dict[str, Door] = {
    "http post": _http_post,
    "http get": _http_get,
    "graphql-transport-ws": _transport_ws,
    "subscriptions-transport-ws": _legacy_ws,
    "sse post": _sse_post,
    "sse get": _sse_get,
    "multipart": _multipart,
}


@asynccontextmanager
async def _router(stack: Stack, **env: Any) -> AsyncIterator[str]:
    async with served_router(stack, **env) as (_, url):
        yield url


@pytest.fixture(scope="module")
async def production(stack: Stack) -> AsyncIterator[str]:
    keys = ",".join(signing_keys(stack.settings))  # production needs the subgraphs' key
    async with _router(
        stack, APP_ENV="production", JWT_PRIVATE_KEYS="", SUBGRAPH_SIGNING_KEYS=keys, **LIMITS
    ) as url:
        yield url


def _seen(errors: list[dict[str, Any]]) -> list[tuple[str, str]]:
    return [(e["message"], e["extensions"]["code"]) for e in errors]


@pytest.mark.parametrize("case", list(BAD_DOCUMENTS))
async def test_every_door_refuses_a_bad_document_with_the_same_code_and_message(
    production: str, case: str
) -> None:
    document, code = BAD_DOCUMENTS[case]
    answers = {
        door: _seen(await client(production, {"query": document})) for door, client in DOORS.items()
    }
    first = answers["http post"]
    assert first[0][1] == code, first
    assert "Did you mean" not in json.dumps(answers)
    for door, seen in answers.items():
        assert seen == first, (door, seen, first)


async def test_mutations_over_get_are_refused_on_every_get_door(production: str) -> None:
    body = {"query": FOLLOW, "variables": {"id": "x"}}
    for client in (_http_get, _sse_get):
        assert _seen(await client(production, body)) == [
            ("Only queries may use GET; send mutations with POST", "METHOD_NOT_ALLOWED")
        ]


async def test_persisted_only_mode_refuses_text_on_every_door(stack: Stack, tmp_path: Path) -> None:
    manifest = tmp_path / "trusted.json"
    manifest.write_text(json.dumps({"0" * 64: TERRITORIES}))
    async with _router(stack, ROUTER_TRUSTED_DOCUMENTS_PATH=str(manifest)) as url:
        for door, client in DOORS.items():
            seen = _seen(await client(url, {"query": "{ territories { name } }"}))
            assert seen == [
                (
                    "Only trusted documents are accepted by this router",
                    "PERSISTED_QUERY_NOT_IN_LIST",
                )
            ], door


# -- queries and mutations over the streaming protocols -----------------------------------------
async def test_queries_and_mutations_run_over_graphql_transport_ws(stack: Stack) -> None:
    member, other = await stack.register(), await stack.register()
    client = await TransportWs.open(_ws_url(stack), member.access_token)
    try:
        await client.subscribe("q", ME)
        answer = await client.receive()
        assert answer == {
            "id": "q",
            "type": "next",
            "payload": {"data": {"me": {"id": member.id, "username": member.username}}},
        }
        assert await client.receive() == {"id": "q", "type": "complete"}
        await client.subscribe("m", FOLLOW, {"id": other.id})
        assert (await client.receive())["payload"] == {"data": {"follow": {"id": other.id}}}
        assert await client.receive() == {"id": "m", "type": "complete"}
    finally:
        await client.close()


async def test_queries_and_mutations_run_over_sse(stack: Stack) -> None:
    member, other = await stack.register(), await stack.register()
    for document, variables, expected in (
        (ME, {}, {"me": {"id": member.id, "username": member.username}}),
        (FOLLOW, {"id": other.id}, {"follow": {"id": other.id}}),
    ):
        events = await _sse_events(stack, {"query": document, "variables": variables}, member)
        assert events == [("next", {"data": expected}), ("complete", None)]


async def _sse_events(stack: Stack, body: dict[str, Any], member: Member) -> list[tuple[str, Any]]:
    url = stack.urls["router"]
    return [e async for e in sse_events(stack.http, url, body, member.access_token)]


def _ws_url(stack: Stack) -> str:
    return stack.urls["router"].replace("http://", "ws://") + "/graphql"


# -- graphql-transport-ws protocol rules -------------------------------------------------------
async def test_a_ping_before_connection_init_is_answered_with_pong(stack: Stack) -> None:
    async with connect(_ws_url(stack), subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        await socket.send('{"type":"ping"}')
        assert orjson.loads(await socket.recv()) == {"type": "pong"}
        await socket.send('{"type":"connection_init"}')
        assert orjson.loads(await socket.recv()) == {"type": "connection_ack"}


async def test_a_subscribe_without_a_query_closes_with_4400(stack: Stack) -> None:
    async with connect(_ws_url(stack), subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        await socket.send('{"type":"connection_init"}')
        assert orjson.loads(await socket.recv()) == {"type": "connection_ack"}
        await socket.send('{"id":"1","type":"subscribe","payload":{"variables":{}}}')
        with pytest.raises(ConnectionClosed) as closed:
            await _drain(socket)
        assert closed.value.rcvd is not None
        assert closed.value.rcvd.code == 4400


async def _drain(socket: Any) -> None:
    async with asyncio.timeout(10):
        while True:
            await socket.recv()


async def test_no_complete_follows_an_error(stack: Stack) -> None:
    client = await TransportWs.open(_ws_url(stack))
    try:
        await client.subscribe("bad", "{ nope }")
        assert (await client.receive())["type"] == "error"
        await client.subscribe("good", TERRITORIES)
        # The next message is about the next operation: no `complete` for "bad" came between.
        message = await client.receive()
        assert message["id"] == "good"
        assert message["type"] == "next"
    finally:
        await client.close()


# -- variables ---------------------------------------------------------------------------------
async def test_deeply_nested_variables_are_a_clear_400(stack: Stack) -> None:
    # 300 levels: the JSON reader accepts it, an encoder (orjson stops at 255) would not.
    raw = '{"query": "' + ME + '", "variables": {"v": ' + '{"a": ' * 300 + "1" + "}" * 300 + "}}"
    response = await stack.http.post(
        f"{stack.urls['router']}/graphql",
        content=raw.encode(),
        headers={"content-type": "application/json"},
    )
    assert response.status_code == 400
    [error] = response.json()["errors"]
    assert error["extensions"]["code"] == "BAD_REQUEST"
    assert error["message"] == "`variables` are nested more than 100 levels deep"


# -- metrics -----------------------------------------------------------------------------------
def _gauge(exposition: str, name: str, labels: str = "") -> float:
    prefix = f"{name}{{{labels}}} " if labels else f"{name} "
    for line in exposition.splitlines():
        if line.startswith(prefix):
            return float(line.removeprefix(prefix))
    return 0.0


async def test_open_subscriptions_are_counted_by_the_router_and_the_subgraph(
    stack: Stack,
) -> None:
    member = await stack.register()
    client = await TransportWs.open(_ws_url(stack), member.access_token)
    labels = 'field="newFollower"'
    try:
        await client.subscribe("1", "subscription { newFollower { node { id } } }")
        await eventually(
            lambda: _both(stack, labels, lambda router, user: router >= 1 and user >= 1),
            what="both gauges to count the subscription",
        )
    finally:
        await client.close()
    await eventually(
        lambda: _both(stack, labels, lambda router, user: router == 0 and user == 0),
        what="both gauges back at 0",
    )


async def _both(stack: Stack, labels: str, check: Callable[[float, float], bool]) -> bool:
    router = _gauge(await stack.metrics("router"), "router_active_subscriptions")
    user = _gauge(await stack.metrics("user"), "graphql_active_subscriptions", labels)
    return check(router, user)
