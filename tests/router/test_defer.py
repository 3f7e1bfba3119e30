"""`@defer` over multipart/mixed: the primary payload first, deferred fragments after, and the
merged result equal to the same query without `@defer`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from typing import Any

import httpx
import orjson
import pytest
from graphql import parse

from core.config import RouterSettings, load_settings
from router.execution.client import SubgraphClient
from router.execution.gateway import Gateway
from router.planning import Fetch, PlanNode
from router.planning.defer import split_deferred
from router.server.app import create_app
from router.supergraph import parse_supergraph
from tests.router.subgraph_kit import serve
from tests.router.supergraphs import FIXTURES, bench_supergraph
from tests.router.workload import workload_subgraphs

QUERY = (FIXTURES / "query.graphql").read_text()
EXPECTED = json.loads((FIXTURES / "expected-response.json").read_text())
PRODUCT = """fragment Product on Product {
  inStock
  name
  price
  shippingEstimate
  upc
  weight
}"""
# The inventory fields of every product deferred (at five depths, under lists).
DEFERRED_PRODUCT = """fragment Product on Product {
  name
  price
  upc
  weight
  ... @defer(label: "stock") {
    inStock
    shippingEstimate
  }
}"""
DEFERRED_QUERY = QUERY.replace(PRODUCT, DEFERRED_PRODUCT)
MULTIPART = "multipart/mixed;deferSpec=20220824, application/json"


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    subgraphs = workload_subgraphs(parse_supergraph(bench_supergraph()))
    supergraph_file = tmp_path_factory.mktemp("defer") / "supergraph.graphql"
    supergraph_file.write_text(bench_supergraph())
    with ExitStack() as stack:
        urls = {n: stack.enter_context(serve(s.app)) + "/graphql" for n, s in subgraphs.items()}
        overrides = {
            "APP_ENV": "test",
            "SUPERGRAPH_PATH": str(supergraph_file),
            "ROUTER_SUBGRAPH_URLS": json.dumps(urls),
            "ROUTER_SUPERGRAPH_POLL_SECONDS": "0",
        }
        for name, value in (("verify_tokens", "false"), ("apq_ttl_seconds", "0")):
            if name in RouterSettings.model_fields:
                overrides[f"ROUTER_{name.upper()}"] = value
        app = create_app(load_settings(overrides))
        yield stack.enter_context(serve(app)) + "/graphql"


def parts(response: httpx.Response) -> list[dict[str, Any]]:
    """The JSON payloads of a multipart/mixed body with boundary `-`."""
    body = response.content
    assert body.endswith(b"\r\n-----\r\n")
    found = []
    for chunk in body[: -len(b"\r\n-----\r\n")].split(b"\r\n---\r\n")[1:]:
        headers, _, payload = chunk.partition(b"\r\n\r\n")
        assert b"application/json" in headers.lower()
        found.append(orjson.loads(payload))
    return found


def merged(payloads: list[dict[str, Any]]) -> dict[str, Any]:
    """What a client holds after applying every incremental payload to the first."""
    result: dict[str, Any] = {"data": payloads[0]["data"]}
    for payload in payloads[1:]:
        for item in payload["incremental"]:
            target: Any = result["data"]
            for key in item["path"]:
                target = target[key]
            target.update(item["data"])
    return result


def test_deferred_fragments_come_after_the_primary_payload_and_merge_to_the_full_answer(
    router: str,
) -> None:
    response = httpx.post(
        router,
        json={"query": DEFERRED_QUERY, "operationName": "TestQuery"},
        headers={"accept": MULTIPART},
        timeout=30,
    )
    assert response.status_code == 200
    assert response.headers["content-type"].startswith('multipart/mixed; boundary="-"')
    payloads = parts(response)
    assert [p["hasNext"] for p in payloads] == [True, False]
    first = payloads[0]["data"]["topProducts"][0]
    assert "inStock" not in first
    assert "shippingEstimate" not in first
    assert first["name"] == EXPECTED["data"]["topProducts"][0]["name"]
    items = payloads[1]["incremental"]
    assert {item["label"] for item in items} == {"stock"}
    assert ["topProducts", 0] in [item["path"] for item in items]
    assert all(set(item["data"]) == {"inStock", "shippingEstimate"} for item in items)
    assert merged(payloads) == EXPECTED


def test_without_multipart_the_complete_answer_comes_at_once(router: str) -> None:
    response = httpx.post(
        router, json={"query": DEFERRED_QUERY, "operationName": "TestQuery"}, timeout=30
    )
    assert response.headers["content-type"] == "application/json"
    assert response.json() == EXPECTED


def test_defer_if_false_is_not_deferred(router: str) -> None:
    query = "query($later: Boolean!) { topProducts { upc ... @defer(if: $later) { name } } }"
    response = httpx.post(
        router,
        json={"query": query, "variables": {"later": False}},
        headers={"accept": MULTIPART},
    )
    assert response.headers["content-type"] == "application/json"
    assert response.json()["data"]["topProducts"][0] == {"upc": "1", "name": "Table"}


async def test_the_primary_part_is_planned_without_the_deferred_subgraph() -> None:
    gateway = Gateway(parse_supergraph(bench_supergraph()), SubgraphClient({}))
    try:
        complete = gateway.prepare(DEFERRED_QUERY, "TestQuery")
    finally:
        await gateway.client.aclose()
    assert complete.deferred is not None
    primary = complete.deferred.primary
    assert "inventory" not in _subgraphs(primary.plan.node)
    assert "inventory" in _subgraphs(complete.plan.node)


def test_split_inlines_fragments_and_drops_variables_only_deferred_fields_use() -> None:
    query = """query Q($currency: String, $x: Boolean = true) {
      users { id ...More @defer(label: "more") }
    }
    fragment More on User { name reviews @include(if: $x) { body } }"""
    split = split_deferred(parse(query), None, {})
    assert split is not None
    assert split.deferred[0].path == ("users",)
    assert split.deferred[0].keys == frozenset({"name", "reviews"})
    assert split.deferred[0].label == "more"
    assert "$x" not in split.primary_query
    assert "$currency" not in split.primary_query
    assert "@defer" not in split.complete_query
    assert "$x: Boolean = true" in split.complete_query
    plain = split_deferred(parse("{ users { id } }"), None, {})
    assert plain is not None
    assert plain.deferred == ()
    # A fragment that is all its parent selects stays in the primary payload.
    alone = split_deferred(parse("{ users { ... @defer { id } } }"), None, {})
    assert alone is not None
    assert alone.deferred == ()


def _subgraphs(node: PlanNode | None) -> set[str]:
    if node is None:
        return set()
    if isinstance(node, Fetch):
        return {node.subgraph}
    found: set[str] = set()
    for name in ("nodes", "node", "if_clause", "else_clause"):
        child = getattr(node, name, None)
        for each in child if isinstance(child, tuple | list) else (child,):
            if each is not None:
                found |= _subgraphs(each)
    return found
