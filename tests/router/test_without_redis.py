"""The router as a gateway for any supergraph, with no Redis at all: persisted queries kept in
process, tokens passed on to the subgraphs; asking it to verify tokens without Redis is a
one-line configuration error naming REDIS_URL."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from core.config import load_settings
from core.errors import ConfigError
from router.server.app import create_app
from router.supergraph import parse_supergraph
from tests.router.subgraph_kit import FakeSubgraph, serve
from tests.router.supergraphs import bench_supergraph
from tests.router.workload import served_workload

QUERY = "{ me { id } }"


def _settings(supergraph_file: Path, urls: dict[str, str], **extra: str) -> dict[str, str]:
    return {
        "APP_ENV": "development",
        "REDIS_URL": "",
        "SUPERGRAPH_PATH": str(supergraph_file),
        "ROUTER_SUBGRAPH_URLS": json.dumps(urls),
        **extra,
    }


@pytest.fixture(scope="module")
def subgraphs() -> Iterator[tuple[dict[str, FakeSubgraph], dict[str, str]]]:
    with served_workload(parse_supergraph(bench_supergraph())) as served:
        yield served


@pytest.fixture(scope="module")
def supergraph_file(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("no-redis") / "supergraph.graphql"
    path.write_text(bench_supergraph())
    return path


def test_persisted_queries_and_tokens_without_redis(
    subgraphs: tuple[dict[str, FakeSubgraph], dict[str, str]], supergraph_file: Path
) -> None:
    fakes, urls = subgraphs
    app = create_app(load_settings(_settings(supergraph_file, urls)))
    assert app.edge.redis is None
    assert app.edge.authenticator is None
    assert app.realtime.replay is None
    digest = hashlib.sha256(QUERY.encode()).hexdigest()
    persisted = {"persistedQuery": {"version": 1, "sha256Hash": digest}}
    with serve(app) as router:
        unknown = httpx.post(f"{router}/graphql", json={"extensions": persisted})
        assert unknown.json()["errors"][0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
        registered = httpx.post(
            f"{router}/graphql",
            json={"query": QUERY, "extensions": persisted},
            headers={"authorization": "Bearer any-issuer-token"},
        )
        assert registered.json() == {"data": {"me": {"id": "1"}}}
        by_hash = httpx.post(f"{router}/graphql", json={"extensions": persisted})
        assert by_hash.json() == {"data": {"me": {"id": "1"}}}
    # The token was not checked here: the subgraph received it as sent.
    sent = [r["headers"].get("authorization") for r in fakes["accounts"].requests]
    assert "Bearer any-issuer-token" in sent


def test_verification_without_redis_is_a_configuration_error(supergraph_file: Path) -> None:
    settings = load_settings(_settings(supergraph_file, {}, ROUTER_VERIFY_TOKENS="true"))
    with pytest.raises(ConfigError) as refused:
        create_app(settings)
    assert str(refused.value).startswith("REDIS_URL: not set")
    production = load_settings(
        _settings(
            supergraph_file,
            {},
            APP_ENV="production",
            JWT_PRIVATE_KEYS="",
            SUBGRAPH_SIGNING_KEYS="a-production-key-of-more-than-32-characters",
        )
    )
    with pytest.raises(ConfigError) as refused:
        create_app(production)
    assert "APP_ENV=production" in str(refused.value)
