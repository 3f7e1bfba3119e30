"""Tooling's introspection through the router: graphql-core's full introspection query with
every option answers the API schema exactly (what GraphiQL, codegen and rover start with),
also in production for tooling callers; circular introspection stays refused."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
from graphql import build_client_schema, build_schema, get_introspection_query, print_schema

from core.security.router_proof import signing_keys
from tests.e2e.stack import Stack, served_router

pytest_plugins = ["tests.e2e.stack"]

SCHEMA = Path(__file__).resolve().parents[2] / "schema.graphql"
FULL_INTROSPECTION = get_introspection_query(
    descriptions=True,
    specified_by_url=True,
    directive_is_repeatable=True,
    schema_description=True,
    input_value_deprecation=True,
)
# The classic attack: types -> fields -> type -> fields ..., ten levels.
CIRCULAR = "{ __schema { types { " + "fields { type { " * 10 + "name" + " } }" * 10 + " } } }"


@asynccontextmanager
async def _router(stack: Stack, **env: Any) -> AsyncIterator[str]:
    async with served_router(stack, **env) as (_, url):
        yield f"{url}/graphql"


async def _post(url: str, query: str, headers: dict[str, str] | None = None) -> dict[str, Any]:
    async with httpx.AsyncClient(timeout=30) as http:
        response = await http.post(url, json={"query": query}, headers=headers or {})
    body: dict[str, Any] = response.json()
    return body


def _printed(answer: dict[str, Any]) -> str:
    assert "errors" not in answer, answer["errors"]
    return print_schema(build_client_schema(answer["data"]))


async def test_the_full_introspection_query_answers_the_api_schema(stack: Stack) -> None:
    answer = await _post(f"{stack.urls['router']}/graphql", FULL_INTROSPECTION)
    assert _printed(answer) == print_schema(build_schema(SCHEMA.read_text()))
    # The default query (what graphql-js's getIntrospectionQuery() sends) too; it does not ask
    # for `specifiedByUrl`.
    default = await _post(f"{stack.urls['router']}/graphql", get_introspection_query())
    expected = re.sub(
        r" @specifiedBy\(url: \"[^\"]*\"\)", "", print_schema(build_schema(SCHEMA.read_text()))
    )
    assert _printed(default) == expected


async def test_circular_introspection_is_refused(stack: Stack) -> None:
    answer = await _post(f"{stack.urls['router']}/graphql", CIRCULAR)
    [error] = answer["errors"]
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    assert "introspection" in error["message"].lower()
    assert "data" not in answer


@pytest.fixture(scope="module")
async def production(stack: Stack) -> AsyncIterator[str]:
    env = {
        "APP_ENV": "production",
        "JWT_PRIVATE_KEYS": "",
        "ROUTER_INTROSPECTION_KEY": "k3y",
        # Production needs the key the subgraphs check (here the stack's generated one).
        "SUBGRAPH_SIGNING_KEYS": ",".join(signing_keys(stack.settings)),
    }
    async with _router(stack, **env) as url:
        yield url


async def test_production_answers_tooling_and_refuses_everyone_else(
    stack: Stack, production: str
) -> None:
    refused = await _post(production, FULL_INTROSPECTION)
    assert refused["errors"][0]["extensions"]["code"] == "INTROSPECTION_DISABLED"
    answer = await _post(production, FULL_INTROSPECTION, {"x-introspection-key": "k3y"})
    assert _printed(answer) == print_schema(build_schema(SCHEMA.read_text()))
    circular = await _post(production, CIRCULAR, {"x-introspection-key": "k3y"})
    assert circular["errors"][0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
