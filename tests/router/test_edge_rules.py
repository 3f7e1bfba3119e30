"""The edge's pure rules (CSRF, CORS, client address, multipart requests, manifests) and
persisted queries on a real Redis, also when Redis cannot be reached."""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from redis.asyncio import Redis
from redis.asyncio.retry import Retry
from redis.backoff import NoBackoff

from core.config import Settings
from core.errors import ConfigError
from router.edge.http_rules import CorsPolicy, TrustedProxies, check_csrf
from router.edge.persisted import (
    AutomaticPersistedQueries,
    PersistedQueryError,
    TrustedDocuments,
)
from router.edge.uploads import UploadedFile, has_uploads, read_multipart
from router.protocols import HttpProblem, OperationRequest
from tests.router.subgraph_kit import free_port


@pytest.mark.parametrize(
    ("method", "headers", "refused"),
    [
        ("GET", {}, True),
        ("GET", {"apollo-require-preflight": "true"}, False),
        ("GET", {"x-apollo-operation-name": "Q"}, False),
        ("POST", {"content-type": "text/plain"}, True),
        ("POST", {"content-type": "multipart/form-data; boundary=x"}, True),
        ("POST", {"content-type": "application/x-www-form-urlencoded"}, True),
        ("POST", {}, True),
        (
            "POST",
            {"content-type": "multipart/form-data; boundary=x", "graphql-preflight": "1"},
            False,
        ),
        ("POST", {"content-type": "application/json"}, False),
        ("POST", {"content-type": "application/json; charset=utf-8"}, False),
    ],
)
def test_csrf(method: str, headers: dict[str, str], refused: bool) -> None:
    if refused:
        with pytest.raises(HttpProblem) as problem:
            check_csrf(method, headers)
        assert problem.value.status == 400
    else:
        check_csrf(method, headers)


def test_cors_names_configured_origins_only() -> None:
    policy = CorsPolicy(frozenset({"https://app.example"}), allow_credentials=True)
    assert policy.headers({"origin": "https://evil.example"}, preflight=True) == {}
    assert policy.headers({}, preflight=False) == {}
    found = policy.headers({"origin": "https://app.example"}, preflight=False)
    assert found == {
        "access-control-allow-origin": "https://app.example",
        "vary": "Origin",
        "access-control-allow-credentials": "true",
    }
    anyone = CorsPolicy(frozenset({"*"}), allow_credentials=False)
    assert anyone.headers({"origin": "https://x.example"}, preflight=False) == {
        "access-control-allow-origin": "*"
    }
    # A wildcard with credentials names the origin (browsers refuse `*` with credentials).
    named = CorsPolicy(frozenset({"*"}), allow_credentials=True)
    found = named.headers({"origin": "https://x.example"}, preflight=True)
    assert found["access-control-allow-origin"] == "https://x.example"
    assert found["access-control-allow-methods"] == "GET, POST, OPTIONS"


def test_a_spoofed_forwarded_for_from_an_untrusted_peer_is_ignored() -> None:
    spoofed = {"x-forwarded-for": "198.51.100.9, 10.0.0.1"}
    nobody = TrustedProxies([])
    assert nobody.client_address(spoofed, ("203.0.113.5", 5000)) == "203.0.113.5"
    assert nobody.client_address(spoofed, ("10.0.0.1", 5000)) == "10.0.0.1"
    # Trusting some proxies does not make any other peer one.
    proxies = TrustedProxies(["10.0.0.0/8"])
    assert proxies.client_address(spoofed, ("203.0.113.5", 5000)) == "203.0.113.5"
    assert proxies.client_address({}, None) is None


def test_a_chain_through_two_trusted_proxies_names_the_client() -> None:
    proxies = TrustedProxies(["10.0.0.0/8", "192.168.1.1/32", "fd00::/8"])
    # client 198.51.100.9 -> proxy 192.168.1.1 (appends the client) -> proxy 10.1.1.1 (appends
    # 192.168.1.1) -> router (peer 10.1.1.1).
    chain = {"x-forwarded-for": "198.51.100.9, 192.168.1.1"}
    assert proxies.client_address(chain, ("10.1.1.1", 443)) == "198.51.100.9"
    six = {"x-forwarded-for": "2001:db8::9, fd00::2"}
    assert proxies.client_address(six, ("fd00::1", 443)) == "2001:db8::9"
    # Every hop trusted (a client inside the network): the left-most one is the client.
    inside = {"x-forwarded-for": "10.5.5.5, 192.168.1.1"}
    assert proxies.client_address(inside, ("10.1.1.1", 443)) == "10.5.5.5"
    # No header behind a trusted proxy: the proxy is all that is known.
    assert proxies.client_address({}, ("10.1.1.1", 443)) == "10.1.1.1"


def test_a_forged_leftmost_entry_is_not_believed() -> None:
    proxies = TrustedProxies(["10.0.0.0/8"])
    # The client sent `X-Forwarded-For: 1.2.3.4`; the proxy appended the address it saw.
    forged = {"x-forwarded-for": "1.2.3.4, 203.0.113.50"}
    assert proxies.client_address(forged, ("10.0.0.1", 443)) == "203.0.113.50"
    # A forged trusted-looking entry does not help either: reading stops at the first
    # untrusted hop from the right.
    forged_inside = {"x-forwarded-for": "10.9.9.9, 203.0.113.50"}
    assert proxies.client_address(forged_inside, ("10.0.0.1", 443)) == "203.0.113.50"
    # Garbage stops the reading at the nearest hop known for certain.
    junk = {"x-forwarded-for": "203.0.113.50, not-an-ip"}
    assert proxies.client_address(junk, ("10.0.0.1", 1)) == "10.0.0.1"


def _multipart(parts: list[tuple[str, str | None, bytes]], boundary: str = "b0undary") -> bytes:
    chunks = []
    for name, filename, content in parts:
        disposition = f'form-data; name="{name}"'
        if filename:
            disposition += f'; filename="{filename}"'
        chunks.append(
            f"--{boundary}\r\nContent-Disposition: {disposition}\r\n\r\n".encode() + content
        )
    return b"\r\n".join(chunks) + f"\r\n--{boundary}--\r\n".encode()


def test_multipart_places_files_in_variables() -> None:
    operations = {
        "query": "mutation($f: [Upload!]!) { up(files: $f) }",
        "variables": {"f": [None, None]},
    }
    body = _multipart(
        [
            ("operations", None, json.dumps(operations).encode()),
            ("map", None, b'{"a": ["variables.f.0"], "b": ["variables.f.1"]}'),
            ("a", "one.txt", b"first"),
            ("b", "two.txt", b"second"),
        ]
    )
    found = read_multipart("multipart/form-data; boundary=b0undary", body)
    first, second = found["variables"]["f"]
    assert isinstance(first, UploadedFile)
    assert (first.filename, first.content) == ("one.txt", b"first")
    assert isinstance(second, UploadedFile)
    assert second.content == b"second"
    assert has_uploads(found)


@pytest.mark.parametrize(
    "mapping",
    [b'{"a": ["variables.missing.deep"]}', b'{"zz": ["variables.f"]}', b'{"a": ["query"]}', b"[]"],
)
def test_multipart_with_a_bad_map_is_refused(mapping: bytes) -> None:
    body = _multipart(
        [
            ("operations", None, b'{"query": "{ a }", "variables": {"f": null}}'),
            ("map", None, mapping),
            ("a", "x.txt", b"x"),
        ]
    )
    with pytest.raises(HttpProblem) as problem:
        read_multipart("multipart/form-data; boundary=b0undary", body)
    assert problem.value.status == 400


def test_trusted_documents_read_both_manifest_formats(tmp_path: Path) -> None:
    document = "{ territories { code } }"
    digest = hashlib.sha256(document.encode()).hexdigest()
    plain = tmp_path / "plain.json"
    plain.write_text(json.dumps({digest: document}))
    apollo = tmp_path / "apollo.json"
    apollo.write_text(
        json.dumps(
            {
                "format": "apollo-persisted-query-manifest",
                "version": 1,
                "operations": [{"id": digest, "body": document, "name": "T", "type": "query"}],
            }
        )
    )
    for path in (plain, apollo):
        assert TrustedDocuments.load(str(path)).by_hash == {digest: document}
    broken = tmp_path / "broken.json"
    broken.write_text("[1, 2]")
    with pytest.raises(ConfigError):
        TrustedDocuments.load(str(broken))


def _request(query: str, digest: str | None) -> OperationRequest:
    extensions = (
        {"persistedQuery": {"version": 1, "sha256Hash": digest}} if digest is not None else None
    )
    return OperationRequest(query, None, None, extensions)


@pytest.fixture
async def redis(settings: Settings) -> AsyncIterator[Redis]:
    client = Redis.from_url(settings.redis.url)
    yield client
    await client.aclose()


async def test_apq_in_redis_is_shared_by_router_instances(redis: Redis, settings: Settings) -> None:
    document = "{ me { id } }"
    digest = hashlib.sha256(document.encode()).hexdigest()
    first = AutomaticPersistedQueries(redis, settings.redis.key_prefix, ttl_seconds=60)
    second = AutomaticPersistedQueries(redis, settings.redis.key_prefix, ttl_seconds=60)
    with pytest.raises(PersistedQueryError) as missing:
        await second.resolve(_request("", digest))
    assert missing.value.errors[0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    await first.resolve(_request(document, digest))
    assert (await second.resolve(_request("", digest))).query == document
    ttl = await redis.ttl(f"{settings.redis.key_prefix}router:apq:{digest}")
    assert 0 < ttl <= 60
    await redis.delete(f"{settings.redis.key_prefix}router:apq:{digest}")


async def test_apq_without_redis_runs_sent_text_and_misses_hashes() -> None:
    dead = Redis(
        host="127.0.0.1", port=free_port(), socket_connect_timeout=0.5, retry=Retry(NoBackoff(), 0)
    )
    try:
        apq = AutomaticPersistedQueries(dead, "t:", ttl_seconds=60)
        document = "{ me { id } }"
        digest = hashlib.sha256(document.encode()).hexdigest()
        assert (await apq.resolve(_request(document, digest))).query == document
        with pytest.raises(PersistedQueryError) as missing:
            await apq.resolve(_request("", hashlib.sha256(b"other").hexdigest()))
        assert missing.value.errors[0]["extensions"]["code"] == "PERSISTED_QUERY_NOT_FOUND"
    finally:
        await dead.aclose()
