"""Tests that talk to a subgraph directly sign their requests as the router does: the subgraphs
answer nothing else (see core/security/router_proof.py)."""

from __future__ import annotations

from collections.abc import Generator

import httpx

from core.config import Settings
from core.security.router_proof import RouterSigner


class SignedAsRouter(httpx.Auth):
    """httpx auth adding the router's proof over each request as it is sent."""

    requires_request_body = True

    def __init__(self, settings: Settings) -> None:
        self.signer = RouterSigner.from_settings(settings)

    def auth_flow(self, request: httpx.Request) -> Generator[httpx.Request, httpx.Response, None]:
        target = request.url.raw_path.decode("ascii")
        request.headers.update(
            self.signer.headers(request.method, target, request.content, request.headers)
        )
        yield request


def websocket_proof(settings: Settings, path: str = "/graphql") -> dict[str, str]:
    """The headers of a WebSocket upgrade the router would send to `path`."""
    return RouterSigner.from_settings(settings).headers("GET", path, None, {})
