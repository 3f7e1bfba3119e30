"""Which address per-IP limits count against: the one the router vouches for."""

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
    ("peer", "forwarded", "address"),
    [
        # The router names the client: public or private, its address is counted.
        ("10.0.0.2", "198.51.100.7", "198.51.100.7"),
        ("127.0.0.1", "10.20.30.40", "10.20.30.40"),
        ("10.0.0.2", "2001:db8::7", "2001:db8::7"),
        # The router could not tell: per-IP limits stay off, and the router's own (peer)
        # address never becomes everybody's bucket.
        ("10.0.0.2", None, None),
        ("93.184.216.34", None, None),
        ("10.0.0.2", "not an address", None),
        ("10.0.0.2", "198.51.100.7, 10.0.0.9", None),
    ],
)
def test_client_address(peer: str, forwarded: str | None, address: str | None) -> None:
    info = client_info(_request(peer, forwarded))
    assert info.ip_address == address
    assert info.limit_ip == address
    assert info.user_agent == "tests/1"
