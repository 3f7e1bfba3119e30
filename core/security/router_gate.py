"""The subgraphs' trust boundary: an ASGI wrapper that lets through only requests the router
signed (HTTP and WebSocket), except on the paths every caller may reach (probes, metrics, JWKS).

Anything else is answered 401 before the service sees it, so a subgraph can believe what only
the router sends: entity representations with privacy flags, the client's address and agent.
"""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Sequence
from typing import Any, cast

from litestar.enums import ScopeType
from litestar.types import ASGIApp, Message, Receive, Scope, Send

from core.security.router_proof import (
    CLIENT_ADDRESS_HEADER,
    CLIENT_AGENT_HEADER,
    EMPTY_BODY_DIGEST,
    PROOF_HEADER,
    ProofRefused,
    ProofVerifier,
)

log = logging.getLogger("unityplan.security")

# Open on every service: liveness, readiness and metrics probes.
PROBE_PATHS = ("/health", "/ready", "/metrics")
_SIGNED_HEADERS = frozenset({PROOF_HEADER, CLIENT_ADDRESS_HEADER, CLIENT_AGENT_HEADER})
_REFUSED_BODY = (
    b'{"data":null,"errors":[{"message":"Only the router may call this service",'
    b'"extensions":{"code":"UNAUTHENTICATED"}}]}'
)
TOO_LARGE_BODY = (
    b'{"data":null,"errors":[{"message":"The request is too large",'
    b'"extensions":{"code":"BAD_REQUEST"}}]}'
)


def request_target(scope: Scope) -> str:
    """The path and query the router signed, as they came over the wire."""
    raw = scope.get("raw_path") or scope["path"].encode()
    path = raw.decode("latin-1")
    query = scope.get("query_string") or b""
    return f"{path}?{query.decode('latin-1')}" if query else path


class RouterOnly:
    """Refuses (401) every request without a valid router proof outside `open_paths`."""

    def __init__(
        self,
        app: ASGIApp,
        verifier: ProofVerifier,
        *,
        open_paths: Sequence[str] = (),
        max_body_bytes: int = 10 * 1024 * 1024,
        too_large_body: bytes = TOO_LARGE_BODY,
        on_refused: Callable[[str], None] | None = None,
    ) -> None:
        self.app = app
        self.verifier = verifier
        # Exact paths, and prefixes when they end with "/".
        self._exact = frozenset(p for p in (*PROBE_PATHS, *open_paths) if not p.endswith("/"))
        self._prefixes = tuple(p for p in open_paths if p.endswith("/"))
        self.max_body_bytes = max_body_bytes
        self.too_large_body = too_large_body
        self._on_refused = on_refused

    def is_open(self, path: str) -> bool:
        return path in self._exact or path.startswith(self._prefixes)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        kind = scope["type"]
        if kind not in (ScopeType.HTTP, ScopeType.WEBSOCKET) or self.is_open(scope["path"]):
            await self.app(scope, receive, send)
            return
        headers: dict[str, str] = {}
        try:
            for raw_name, raw_value in scope["headers"]:
                name = raw_name.decode("latin-1").lower()
                if name in _SIGNED_HEADERS:
                    if name in headers:
                        raise ProofRefused(f"{name} sent twice")
                    headers[name] = raw_value.decode("latin-1")
            pending = self.verifier.check_header(headers.get(PROOF_HEADER))
            if kind == ScopeType.WEBSOCKET:
                target = request_target(scope)
                self.verifier.verify(pending, "GET", target, EMPTY_BODY_DIGEST, headers)
                await self.app(scope, receive, send)
                return
        except ProofRefused as refused:
            await self._refuse(scope, receive, send, str(refused))
            return
        body = await self._read_body(receive)
        if body is None:
            return  # the client went away
        if len(body) > self.max_body_bytes:
            await _respond(send, 413, self.too_large_body, ())
            return
        digest = hashlib.sha256(body).hexdigest() if body else EMPTY_BODY_DIGEST
        try:
            method = str(scope.get("method", "POST"))
            self.verifier.verify(pending, method, request_target(scope), digest, headers)
        except ProofRefused as refused:
            await self._refuse(scope, receive, send, str(refused))
            return
        await self.app(scope, _replay(body, receive), send)

    async def _read_body(self, receive: Receive) -> bytes | None:
        """The whole body (stopping once it passes the limit); None when the client left."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message: dict[str, Any] = dict(await receive())
            if message["type"] == "http.disconnect":
                return None
            chunk: bytes = message.get("body", b"")
            size += len(chunk)
            chunks.append(chunk)
            if size > self.max_body_bytes or not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send, reason: str) -> None:
        log.warning(
            "refused a %s request to %s without a valid router proof: %s",
            scope["type"],
            scope["path"],
            reason,
        )
        if self._on_refused is not None:
            self._on_refused(scope["type"])
        if scope["type"] == ScopeType.HTTP:
            await _respond(send, 401, _REFUSED_BODY, ((b"www-authenticate", b"RouterProof"),))
            return
        # A WebSocket: answer the upgrade with a plain 401 where the server allows it
        # (ASGI websocket denial response), else close before accepting (the server sends 403).
        message = await receive()
        if message["type"] != "websocket.connect":
            return
        if "websocket.http.response" in (scope.get("extensions") or {}):
            start = {
                "type": "websocket.http.response.start",
                "status": 401,
                "headers": [(b"content-type", b"application/json")],
            }
            await send(cast("Message", start))
            body = {"type": "websocket.http.response.body", "body": _REFUSED_BODY}
            await send(cast("Message", body))
        else:
            await send(cast("Message", {"type": "websocket.close", "code": 4401}))


async def _respond(
    send: Send, status: int, body: bytes, extra_headers: tuple[tuple[bytes, bytes], ...]
) -> None:
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    start = {"type": "http.response.start", "status": status, "headers": [*headers, *extra_headers]}
    await send(cast("Message", start))
    await send(cast("Message", {"type": "http.response.body", "body": body}))


def _replay(body: bytes, receive: Receive) -> Receive:
    """A `receive` that hands the app the body already read, then the connection's messages."""
    delivered = False

    async def replayed() -> Any:
        nonlocal delivered
        if not delivered:
            delivered = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return cast("Receive", replayed)
