"""The router over HTTP: GraphQL-over-HTTP rules, header forwarding, health, hot reload."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from core.config import Settings, load_settings
from router.server.app import create_app
from router.supergraph import parse_supergraph
from tests.router.subgraph_kit import FakeSubgraph, serve
from tests.router.supergraphs import FIXTURES, bench_supergraph
from tests.router.workload import served_workload

QUERY = (FIXTURES / "query.graphql").read_text()
EXPECTED = (FIXTURES / "expected-response.json").read_bytes().strip()


def router_settings(supergraph_file: Path, urls: dict[str, str], **extra: Any) -> Settings:
    return load_settings(
        {
            "APP_ENV": "test",
            "SUPERGRAPH_PATH": str(supergraph_file),
            "ROUTER_SUBGRAPH_URLS": json.dumps(urls),
            "ROUTER_SUPERGRAPH_POLL_SECONDS": 0.05,
            # Fake subgraphs without an issuer: tokens are the subgraphs' business here.
            "ROUTER_VERIFY_TOKENS": "false",
            "ROUTER_APQ_TTL_SECONDS": 0,
            **extra,
        }
    )


@pytest.fixture(scope="module")
def subgraphs() -> Iterator[tuple[dict[str, FakeSubgraph], dict[str, str]]]:
    with served_workload(parse_supergraph(bench_supergraph())) as served:
        yield served


@pytest.fixture(scope="module")
def router(
    subgraphs: tuple[dict[str, FakeSubgraph], dict[str, str]],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[str]:
    supergraph_file = tmp_path_factory.mktemp("router") / "supergraph.graphql"
    supergraph_file.write_text(bench_supergraph())
    app = create_app(router_settings(supergraph_file, subgraphs[1], ROUTER_BATCH_REQUESTS="true"))
    with serve(app) as url:
        yield url


def test_post_json_answers_the_workload_exactly(router: str) -> None:
    response = httpx.post(f"{router}/graphql", json={"query": QUERY, "operationName": "TestQuery"})
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/json"
    assert response.content == EXPECTED


def test_get_queries_and_no_mutations_over_get(router: str) -> None:
    preflighted = {"apollo-require-preflight": "true"}  # CSRF prevention, see test_edge_http
    response = httpx.get(
        f"{router}/graphql",
        params={"query": "query($id: ID!) { user(id: $id) { name } }", "variables": '{"id": "2"}'},
        headers=preflighted,
    )
    assert response.json() == {"data": {"user": {"name": "Dotan Simha"}}}
    response = httpx.get(
        f"{router}/graphql", params={"query": "mutation M { x }"}, headers=preflighted
    )
    assert response.status_code == 405
    assert response.headers["allow"] == "POST"


def test_graphql_response_media_type_and_status_codes(router: str) -> None:
    accept = {"accept": "application/graphql-response+json"}
    response = httpx.post(f"{router}/graphql", json={"query": "{ users { nope } }"}, headers=accept)
    assert response.status_code == 400
    assert response.headers["content-type"] == "application/graphql-response+json"
    assert response.json()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    response = httpx.post(f"{router}/graphql", json={"query": "{ users { nope } }"})
    assert response.status_code == 200
    assert "data" not in response.json()
    response = httpx.post(f"{router}/graphql", json={"query": "{ me { id } }"}, headers=accept)
    assert response.status_code == 200
    assert response.json() == {"data": {"me": {"id": "1"}}}
    response = httpx.post(
        f"{router}/graphql",
        json={"query": "query($id: ID!) { user(id: $id) { id } }"},
        headers=accept,
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"


def test_malformed_requests(router: str) -> None:
    bad_json = httpx.post(
        f"{router}/graphql", content=b"{", headers={"content-type": "application/json"}
    )
    assert bad_json.status_code == 400
    wrong_type = httpx.post(
        f"{router}/graphql", content=b"{ me { id } }", headers={"content-type": "text/plain"}
    )
    assert wrong_type.status_code == 415
    no_query = httpx.post(f"{router}/graphql", json={"variables": {}})
    assert no_query.status_code == 400
    not_acceptable = httpx.post(
        f"{router}/graphql", json={"query": "{ me { id } }"}, headers={"accept": "text/csv"}
    )
    assert not_acceptable.status_code == 406
    assert httpx.get(f"{router}/nowhere").status_code == 404


def test_batched_requests_when_enabled(router: str) -> None:
    response = httpx.post(
        f"{router}/graphql",
        json=[{"query": "{ me { id } }"}, {"query": "{ topProducts(first: 1) { upc } }"}],
    )
    assert response.json() == [
        {"data": {"me": {"id": "1"}}},
        {"data": {"topProducts": [{"upc": "1"}]}},
    ]


def test_authorization_and_trace_context_reach_subgraphs(
    router: str, subgraphs: tuple[dict[str, FakeSubgraph], dict[str, str]]
) -> None:
    accounts = subgraphs[0]["accounts"]
    accounts.requests.clear()
    traceparent = "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"
    httpx.post(
        f"{router}/graphql",
        json={"query": "{ me { id } }"},
        headers={"authorization": "Bearer abc", "traceparent": traceparent, "cookie": "secret=1"},
    )
    headers = accounts.requests[-1]["headers"]
    assert headers["authorization"] == "Bearer abc"
    # The caller's trace continues: the subgraph's parent is the router's own fetch span.
    _, trace_id, parent_id, _ = headers["traceparent"].split("-")
    assert trace_id == traceparent.split("-")[1]
    assert parent_id != traceparent.split("-")[2]
    assert "cookie" not in headers


def test_health_ready_and_graphiql(router: str) -> None:
    assert httpx.get(f"{router}/health").json() == {"status": "ok"}
    assert httpx.get(f"{router}/ready").status_code == 200
    page = httpx.get(f"{router}/graphql", headers={"accept": "text/html"})
    assert page.status_code == 200
    assert "graphiql" in page.text.lower()


def _wait_for(condition: Any, seconds: float = 10.0) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        time.sleep(0.05)


def test_supergraph_hot_reload_swaps_and_refuses_invalid_files(
    subgraphs: tuple[dict[str, FakeSubgraph], dict[str, str]], tmp_path: Path
) -> None:
    supergraph_file = tmp_path / "supergraph.graphql"
    supergraph_file.write_text(bench_supergraph())
    app = create_app(router_settings(supergraph_file, subgraphs[1]))
    with serve(app) as url:

        def me() -> dict[str, Any]:
            return httpx.post(f"{url}/graphql", json={"query": "{ me { id } }"}).json()

        assert me() == {"data": {"me": {"id": "1"}}}
        supergraph_file.write_text(
            bench_supergraph().replace("  me: User @join__field(graph: ACCOUNTS)\n", "")
        )
        _wait_for(lambda: "errors" in me())
        assert me()["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
        supergraph_file.write_text("this is not a supergraph")
        time.sleep(0.3)  # several poll intervals: the invalid file must have been seen and refused
        assert httpx.post(f"{url}/graphql", json={"query": "{ users { id } }"}).json()["data"][
            "users"
        ][0] == {"id": "1"}


def test_start_up_fails_clearly_without_a_supergraph(tmp_path: Path) -> None:
    import asyncio

    from router.supergraph import SupergraphError

    app = create_app(router_settings(tmp_path / "missing.graphql", {}))
    with pytest.raises(SupergraphError, match=r"missing\.graphql"):
        asyncio.run(app.state.start())


def test_subscriptions_are_refused_clearly(router: str) -> None:
    response = httpx.post(
        f"{router}/graphql",
        json={"query": "subscription { me { id } }"},
        headers={"accept": "application/graphql-response+json"},
    )
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] in {
        "GRAPHQL_VALIDATION_FAILED",  # the workload supergraph has no subscription type
        "OPERATION_NOT_SUPPORTED",
    }


def test_requests_in_flight_finish_on_the_supergraph_they_started_with(
    subgraphs: tuple[dict[str, FakeSubgraph], dict[str, str]], tmp_path: Path
) -> None:
    import threading

    supergraph_file = tmp_path / "supergraph.graphql"
    supergraph_file.write_text(bench_supergraph())
    accounts = subgraphs[0]["accounts"]
    app = create_app(router_settings(supergraph_file, subgraphs[1]))
    answers: list[dict[str, Any]] = []
    with serve(app) as url:
        accounts.requests.clear()
        accounts.delay_seconds = 1.0
        try:
            slow = threading.Thread(
                target=lambda: answers.append(
                    httpx.post(
                        f"{url}/graphql", json={"query": "{ users { id } }"}, timeout=10
                    ).json()
                )
            )
            slow.start()
            _wait_for(lambda: bool(accounts.requests))  # the request is at the subgraph now
            supergraph_file.write_text(
                bench_supergraph().replace("  users: [User] @join__field(graph: ACCOUNTS)\n", "")
            )

            def users_gone() -> bool:
                body = httpx.post(f"{url}/graphql", json={"query": "{ users { id } }"}).json()
                return "data" not in body

            _wait_for(users_gone)
            slow.join(timeout=10)
        finally:
            accounts.delay_seconds = 0
    assert answers == [{"data": {"users": [{"id": str(i)} for i in range(1, 7)]}}]
