"""`schema.graphql` is the API schema of our composed subgraphs, and the router can compose
its supergraph from running subgraphs at start-up."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import orjson

from core.config import load_settings
from router.server.state import RouterState
from router.supergraph import parse_supergraph
from tests.router.subgraph_kit import serve
from tests.router.supergraphs import FIXTURES
from unityplan.cli.router_commands import compose_local
from unityplan.registry import subgraph_urls

ROOT = Path(__file__).resolve().parents[2]


def test_committed_api_schema_is_current() -> None:
    expected = parse_supergraph(compose_local()).api_sdl + "\n"
    committed = (ROOT / "schema.graphql").read_text()
    assert committed == expected, (
        "schema.graphql is stale: run `unityplan schema -o schema.graphql`"
    )


def _sdl_server(sdl: str) -> Any:
    body = orjson.dumps({"data": {"_service": {"sdl": sdl}}})

    async def app(scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            return
        while (await receive()).get("more_body"):
            pass
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [(b"content-type", b"application/json")],
            }
        )
        await send({"type": "http.response.body", "body": body})

    return app


async def test_router_composes_from_running_subgraphs_without_a_supergraph_file() -> None:
    accounts = (FIXTURES / "subgraphs" / "accounts.graphql").read_text()
    reviews = (FIXTURES / "subgraphs" / "reviews.graphql").read_text()
    with serve(_sdl_server(accounts)) as auth_url, serve(_sdl_server(reviews)) as user_url:
        settings = load_settings(
            {
                "APP_ENV": "test",
                "SUPERGRAPH_PATH": "",
                "AUTH_SUBGRAPH_URL": f"{auth_url}/graphql",
                "USER_SUBGRAPH_URL": f"{user_url}/graphql",
                "ROUTER_SUBGRAPH_URLS": json.dumps({}),
            }
        )
        state = RouterState(settings, subgraph_urls(settings))
        await state.start()
        try:
            assert state.gateway is not None
            supergraph = state.gateway.supergraph
            assert sorted(supergraph.subgraphs) == ["auth", "user"]
            assert supergraph.subgraphs["user"].url == f"{user_url}/graphql"
            assert supergraph.types["User"].fields["reviews"].resolvable_in == {"user"}
        finally:
            await state.stop()
