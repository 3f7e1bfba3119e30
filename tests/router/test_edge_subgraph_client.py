"""The subgraph client at the edge: retries only for idempotent fetches whose connection
failed, and header propagation rules per subgraph, against a real local HTTP server."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import pytest

from core.config import load_settings
from router.edge.http_rules import HeaderRules
from router.execution.client import SubgraphClient, SubgraphFailure

ANSWER = b'{"data":{"ok":true}}'


@dataclass
class FlakySubgraph:
    """Closes its first `drop` connections without a word, then answers every request."""

    drop: int = 0
    connections: int = 0
    requests: list[dict[str, str]] = field(default_factory=list)

    async def handle(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.connections += 1
        if self.connections <= self.drop:
            writer.close()
            return
        head = await reader.readuntil(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")[1:]
        headers = {
            k.lower(): v.strip() for k, _, v in (line.partition(":") for line in lines if line)
        }
        await reader.readexactly(int(headers.get("content-length", "0")))
        self.requests.append(headers)
        writer.write(
            b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\nconnection: close\r\n"
            + f"content-length: {len(ANSWER)}\r\n\r\n".encode()
            + ANSWER
        )
        await writer.drain()
        writer.close()


@pytest.fixture
async def flaky() -> AsyncIterator[tuple[FlakySubgraph, str]]:
    subgraph = FlakySubgraph()
    server = await asyncio.start_server(subgraph.handle, "127.0.0.1", 0)
    port = server.sockets[0].getsockname()[1]
    try:
        yield subgraph, f"http://127.0.0.1:{port}/graphql"
    finally:
        server.close()
        await server.wait_closed()


async def test_a_query_fetch_is_retried_after_a_dropped_connection(
    flaky: tuple[FlakySubgraph, str],
) -> None:
    subgraph, url = flaky
    subgraph.drop = 1
    client = SubgraphClient({"a": url}, retries=1)
    try:
        body = await client.request("a", {"query": "{ ok }"}, {}, idempotent=True)
    finally:
        await client.aclose()
    assert body == {"data": {"ok": True}}
    assert subgraph.connections == 2


async def test_a_mutation_is_never_retried(flaky: tuple[FlakySubgraph, str]) -> None:
    subgraph, url = flaky
    subgraph.drop = 1
    client = SubgraphClient({"a": url}, retries=3)
    try:
        with pytest.raises(SubgraphFailure) as failed:
            await client.request("a", {"query": "mutation { ok }"}, {}, idempotent=False)
    finally:
        await client.aclose()
    assert failed.value.code == "SUBREQUEST_HTTP_ERROR"
    assert subgraph.connections == 1


async def test_headers_follow_the_propagation_rules(flaky: tuple[FlakySubgraph, str]) -> None:
    subgraph, url = flaky
    settings = load_settings(
        {
            "ROUTER_PROPAGATE_HEADERS": "accept-language, x-client-version",
            "ROUTER_PROPAGATE_HEADERS_BY_SUBGRAPH": '{"a": ["x-tenant"]}',
        }
    ).router
    rules = HeaderRules.from_settings(settings)
    incoming = {
        "authorization": "Bearer t",
        "accept-language": "da",
        "x-client-version": "7",
        "x-tenant": "north",
        "cookie": "session=secret",
    }
    forwarded = rules.forwarded(incoming)
    assert "cookie" not in forwarded
    client = SubgraphClient({"a": url, "b": url}, headers_only_to=rules.only_to)
    try:
        for name in ("a", "b"):
            await client.request(name, {"query": "{ ok }"}, forwarded)
    finally:
        await client.aclose()
    to_a, to_b = subgraph.requests
    assert (to_a["authorization"], to_a["accept-language"], to_a["x-client-version"]) == (
        "Bearer t",
        "da",
        "7",
    )
    assert to_a["x-tenant"] == "north"
    assert "x-tenant" not in to_b
    assert to_b["x-client-version"] == "7"
    assert "cookie" not in to_a
