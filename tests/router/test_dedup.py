"""In-flight de-duplication: identical queries of one viewer share one execution, identical
subgraph fetches go out once, and nothing is ever shared between two viewers or for mutations."""

from __future__ import annotations

import asyncio
import json
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest

from core.config import RouterSettings, Settings, load_settings
from router.execution.fetch_sharing import Inflight, fetch_key, is_query_document
from router.pipeline.inflight import SharedAnswer, query_key, response_bytes
from router.server.app import RouterApp, create_app
from router.supergraph import parse_supergraph
from tests.router.subgraph_kit import FakeSubgraph, make_subgraph, serve
from tests.router.supergraphs import SHOP

NAMES = {"Bearer ada": "Ada", "Bearer bob": "Bob"}


class Gate:
    """Holds every subgraph answer until the test has seen the requests it expects pile up."""

    def __init__(self) -> None:
        self.open = threading.Event()

    async def wait(self) -> None:
        # Opened from the test's thread, awaited in the subgraph server's loop.
        while not self.open.is_set():  # noqa: ASYNC110
            await asyncio.sleep(0.005)


def accounts(gate: Gate) -> FakeSubgraph:
    async def me(_root: Any, info: Any) -> dict[str, Any]:
        await gate.wait()
        name = NAMES[info.context["authorization"]]
        return {"id": name.lower(), "name": name}

    async def logout(*_: Any) -> bool:
        await gate.wait()
        return True

    return make_subgraph(
        parse_supergraph(SHOP),
        "accounts",
        resolvers={"Query.me": me, "Mutation.logout": logout},
    )


def settings_for(tmp_path: Path, url: str, **extra: str) -> Settings:
    supergraph = tmp_path / "supergraph.graphql"
    supergraph.write_text(SHOP)
    overrides = {
        "APP_ENV": "test",
        "SUPERGRAPH_PATH": str(supergraph),
        "ROUTER_SUBGRAPH_URLS": json.dumps({"accounts": url}),
        "ROUTER_SUPERGRAPH_POLL_SECONDS": "0",
        **extra,
    }
    # Fake subgraphs without an issuer: the tokens here are names, for the subgraph to read.
    if "verify_tokens" in RouterSettings.model_fields:
        overrides["ROUTER_VERIFY_TOKENS"] = "false"
    if "apq_ttl_seconds" in RouterSettings.model_fields:
        overrides["ROUTER_APQ_TTL_SECONDS"] = "0"
    return load_settings(overrides)


@pytest.fixture
def gate() -> Gate:
    return Gate()


@pytest.fixture
def subgraph(gate: Gate) -> Iterator[tuple[FakeSubgraph, str]]:
    found = accounts(gate)
    with serve(found.app) as url:
        yield found, url + "/graphql"
    gate.open.set()


@pytest.fixture
def router_for(
    subgraph: tuple[FakeSubgraph, str], tmp_path: Path
) -> Iterator[Callable[..., tuple[RouterApp, str]]]:
    with_servers: list[Any] = []

    def start(**extra: str) -> tuple[RouterApp, str]:
        app = create_app(settings_for(tmp_path, subgraph[1], **extra))
        server = serve(app)
        with_servers.append(server)
        return app, server.__enter__() + "/graphql"

    yield start
    for server in with_servers:
        server.__exit__(None, None, None)


async def until(condition: Callable[[], bool], what: str, seconds: float = 10) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"never happened: {what}")
        await asyncio.sleep(0.01)


async def post_all(
    url: str, requests: list[tuple[str, str]], gate: Gate, ready: Callable[[], bool]
) -> list[dict[str, Any]]:
    """POST every (token, query) at once, open the gate once `ready`, return the answers."""
    async with httpx.AsyncClient(timeout=20) as client:
        sent = [
            asyncio.ensure_future(
                client.post(url, json={"query": query}, headers={"authorization": token})
            )
            for token, query in requests
        ]
        try:
            await until(ready, "the expected requests in flight")
        finally:
            gate.open.set()
        return [(await answer).json() for answer in sent]


def shared_fetches(app: RouterApp) -> int:
    return app.state.client._pool.inflight.shared


async def test_identical_queries_of_one_viewer_share_one_execution(
    router_for: Callable[..., tuple[RouterApp, str]],
    subgraph: tuple[FakeSubgraph, str],
    gate: Gate,
) -> None:
    app, url = router_for()
    answers = await post_all(
        url, [("Bearer ada", "{ me { name } }")] * 5, gate, lambda: app.inflight.shared == 4
    )
    assert answers == [{"data": {"me": {"name": "Ada"}}}] * 5
    assert len(subgraph[0].requests) == 1


async def test_two_viewers_never_share_a_response(
    router_for: Callable[..., tuple[RouterApp, str]],
    subgraph: tuple[FakeSubgraph, str],
    gate: Gate,
) -> None:
    app, url = router_for()
    requests = [("Bearer ada", "{ me { name } }"), ("Bearer bob", "{ me { name } }")] * 3
    answers = await post_all(
        url, requests, gate, lambda: app.inflight.shared == 4 and len(subgraph[0].requests) == 2
    )
    assert (
        answers
        == [
            {"data": {"me": {"name": "Ada"}}},
            {"data": {"me": {"name": "Bob"}}},
        ]
        * 3
    )
    viewers = sorted(r["headers"]["authorization"] for r in subgraph[0].requests)
    assert viewers == ["Bearer ada", "Bearer bob"]


async def test_mutations_are_never_shared(
    router_for: Callable[..., tuple[RouterApp, str]],
    subgraph: tuple[FakeSubgraph, str],
    gate: Gate,
) -> None:
    app, url = router_for()
    answers = await post_all(
        url,
        [("Bearer ada", "mutation { logout }")] * 3,
        gate,
        lambda: len(subgraph[0].requests) == 3,
    )
    assert answers == [{"data": {"logout": True}}] * 3
    assert app.inflight.shared == 0
    assert shared_fetches(app) == 0


async def test_identical_subgraph_fetches_of_different_documents_go_out_once(
    router_for: Callable[..., tuple[RouterApp, str]],
    subgraph: tuple[FakeSubgraph, str],
    gate: Gate,
) -> None:
    # Different documents (so no inbound sharing) planned into the same subgraph fetch.
    app, url = router_for()
    requests = [("Bearer ada", "{ me { name } }" + " " * n) for n in range(3)]
    requests.append(("Bearer bob", "{ me { name } }"))
    answers = await post_all(
        url,
        requests,
        gate,
        lambda: shared_fetches(app) == 2 and len(subgraph[0].requests) == 2,
    )
    assert [a["data"]["me"]["name"] for a in answers] == ["Ada", "Ada", "Ada", "Bob"]
    assert app.inflight.shared == 0


async def test_both_switched_off_every_request_executes(
    router_for: Callable[..., tuple[RouterApp, str]],
    subgraph: tuple[FakeSubgraph, str],
    gate: Gate,
) -> None:
    app, url = router_for(ROUTER_DEDUP_QUERIES="false", ROUTER_DEDUP_SUBGRAPH_FETCHES="false")
    answers = await post_all(
        url,
        [("Bearer ada", "{ me { name } }")] * 4,
        gate,
        lambda: len(subgraph[0].requests) == 4,
    )
    assert answers == [{"data": {"me": {"name": "Ada"}}}] * 4
    assert app.inflight.shared == 0
    assert shared_fetches(app) == 0


async def test_shared_work_survives_a_caller_going_away_and_failures_reach_everyone() -> None:
    inflight: Inflight[str, int] = Inflight()
    release = asyncio.Event()

    async def work() -> int:
        await release.wait()
        return 42

    first = asyncio.ensure_future(inflight.share("k", work))
    second = asyncio.ensure_future(inflight.share("k", work))
    await until(lambda: inflight.shared == 1, "the second caller joined")
    first.cancel()
    release.set()
    assert await second == 42
    assert len(inflight) == 0

    async def broken() -> int:
        await asyncio.sleep(0)
        raise RuntimeError("subgraph down")

    results = await asyncio.gather(
        inflight.share("k", broken), inflight.share("k", broken), return_exceptions=True
    )
    assert [str(r) for r in results] == ["subgraph down"] * 2
    assert len(inflight) == 0


def test_a_shared_answer_is_encoded_once() -> None:
    answer = SharedAnswer({"data": {"me": {"name": "Ada"}}})
    assert response_bytes(answer) == orjson.dumps({"data": {"me": {"name": "Ada"}}})
    assert response_bytes(answer) is response_bytes(answer)
    assert response_bytes({"data": None}) == b'{"data":null}'


def test_keys_tell_viewers_and_variables_apart_but_not_trace_context() -> None:
    ada = {"authorization": "Bearer ada", "traceparent": "00-a-b-01"}
    base = query_key("h", "{ me { name } }", None, {"a": 1, "b": 2}, ada, {})
    assert base == query_key(
        "h", "{ me { name } }", None, {"b": 2, "a": 1}, {**ada, "traceparent": "00-c-d-01"}, {}
    )
    bob = {"authorization": "Bearer bob"}
    assert base != query_key("h", "{ me { name } }", None, {"a": 1, "b": 2}, bob, {})
    assert base != query_key("h", "{ me { name } }", None, {"a": 1, "b": 3}, ada, {})
    with_cookie = {**ada, "cookie": "session=s"}
    assert base != query_key("h", "{ me { name } }", None, {"a": 1, "b": 2}, with_cookie, {})
    assert fetch_key("a", b"{}", {"traceparent": "x"}) == fetch_key("a", b"{}", {})
    assert fetch_key("a", b"{}", {"authorization": "x"}) != fetch_key("a", b"{}", {})
    assert is_query_document("query Q__a__0 { me { id } }")
    assert is_query_document("{ me { id } }")
    assert not is_query_document("mutation M__a__0 { logout }")
