"""Which address per-IP limits count against, behind the router or not."""

from __future__ import annotations

from typing import Any

import pytest
from litestar import Request

from subgraphs.auth.context import client_info


def _request(peer: str, forwarded: str | None = None) -> Request[Any, Any, Any]:
    headers = [(b"user-agent", b"tests/1")]
    if forwarded is not None:
        headers.append((b"x-forwarded-for", forwarded.encode()))
    return Request({"type": "http", "client": (peer, 4321), "headers": headers})  # type: ignore[typeddict-item]


@pytest.mark.parametrize(
    ("peer", "forwarded", "trust", "address", "limit"),
    [
        # A public client talking to the subgraph directly.
        ("93.184.216.34", None, False, "93.184.216.34", "93.184.216.34"),
        # Behind the router without a trusted header: the real client is unknown, and the
        # router's own address must not become everybody's shared bucket.
        ("10.0.0.2", None, False, "10.0.0.2", None),
        ("127.0.0.1", "198.51.100.7", False, "127.0.0.1", None),
        # Behind the router, which names the client.
        ("10.0.0.2", "198.51.100.7, 10.0.0.9", True, "198.51.100.7", "198.51.100.7"),
        ("10.0.0.2", "not an address", True, "10.0.0.2", None),
    ],
)
def test_client_address(
    peer: str, forwarded: str | None, trust: bool, address: str, limit: str | None
) -> None:
    info = client_info(_request(peer, forwarded), trust_forwarded_for=trust)
    assert info.ip_address == address
    assert info.limit_ip == limit
    assert info.user_agent == "tests/1"
