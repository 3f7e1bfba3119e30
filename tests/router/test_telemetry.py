"""The router's /metrics: request RED metrics, plan-cache hits, per-subgraph fetches and
failures, runtime probes; and a client span per subgraph fetch."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from core.config import load_settings
from router.server.app import create_app
from router.supergraph import parse_supergraph
from tests.router.subgraph_kit import free_port, serve
from tests.router.supergraphs import FIXTURES, bench_supergraph
from tests.router.workload import workload_subgraphs

QUERY = (FIXTURES / "query.graphql").read_text()


def samples(url: str) -> dict[tuple[str, frozenset[tuple[str, str]]], float]:
    text = httpx.get(f"{url}/metrics").text
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
    }


def value(
    found: dict[tuple[str, frozenset[tuple[str, str]]], float], name: str, **labels: str
) -> float:
    return found.get((name, frozenset(labels.items())), 0.0)


@pytest.fixture(scope="module")
def router(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, list[str]]]:
    found = workload_subgraphs(parse_supergraph(bench_supergraph()))
    with ExitStack() as stack:
        urls = {n: stack.enter_context(serve(s.app)) + "/graphql" for n, s in found.items()}
        # One subgraph that cannot be reached: its fetches fail and are counted as such.
        unreachable = sorted(urls)[0]
        urls[unreachable] = f"http://127.0.0.1:{free_port()}/graphql"
        supergraph: Path = tmp_path_factory.mktemp("telemetry") / "supergraph.graphql"
        supergraph.write_text(bench_supergraph())
        settings = load_settings(
            {
                "APP_ENV": "test",
                "SUPERGRAPH_PATH": str(supergraph),
                "ROUTER_SUBGRAPH_URLS": json.dumps(urls),
                "ROUTER_VERIFY_TOKENS": "false",  # no issuer among the fake subgraphs
                "ROUTER_APQ_TTL_SECONDS": 0,
            }
        )
        url = stack.enter_context(serve(create_app(settings)))
        yield url, sorted(urls)


def test_requests_plan_cache_and_fetches_are_measured(router: tuple[str, list[str]]) -> None:
    url, names = router
    before = samples(url)
    for _ in range(3):
        response = httpx.post(f"{url}/graphql", json={"query": QUERY, "operationName": "TestQuery"})
        assert response.status_code == 200
    httpx.get(f"{url}/nowhere")
    after = samples(url)

    def grew(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert (
        grew(
            "router_http_requests_total",
            method="POST",
            route="/graphql",
            status="200",
            pod="",
            territory="",
        )
        == 3
    )
    assert (
        grew(
            "router_http_requests_total",
            method="GET",
            route="unmatched",
            status="404",
            pod="",
            territory="",
        )
        == 1
    )
    assert grew("router_plan_cache_misses_total") <= 1  # planned once at most
    assert grew("router_plan_cache_hits_total") >= 2
    assert value(after, "router_plan_cache_entries") >= 1
    unreachable = names[0]
    assert (
        grew(
            "router_subgraph_requests_total", subgraph=unreachable, outcome="SUBREQUEST_HTTP_ERROR"
        )
        >= 3
    )
    reached = [
        n for n in names[1:] if grew("router_subgraph_requests_total", subgraph=n, outcome="ok")
    ]
    assert reached  # the other subgraphs answered
    assert grew("router_subgraph_request_duration_seconds_count", subgraph=reached[0]) >= 3
    assert ("router_active_subscriptions", frozenset()) in after
    assert value(after, "service_dependency_ready", dependency="supergraph") == 1
    assert ("python_event_loop_lag_seconds", frozenset()) in after
    assert ("process_resident_memory_bytes", frozenset()) in after
