"""The router's check of access tokens: signature against the auth subgraph's JWKS (fetched,
cached, re-fetched on an unknown `kid`) and the immediate-revocation registry in Redis."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping
from typing import Any

import httpx
from jose import jwt as jose_jwt
from jose.exceptions import JOSEError

from core.errors import ConfigError, Unauthenticated
from core.observability.http import label_request
from core.security import KeyRing, Principal, SessionRegistry, bearer_token, principal_from_claims
from core.security.keys import Algorithm

log = logging.getLogger("unityplan.router.edge")

# A token with an unknown kid triggers at most one JWKS fetch per this many seconds, so a
# stream of forged kids cannot turn the router into a load generator against the auth service.
_MIN_REFRESH_SECONDS = 5.0
# Verified tokens remembered (bounded by dropping all when full).
_VERIFIED_TOKENS = 10_000


class JwksKeys:
    """A verify-only KeyRing built from a JWKS URL, kept for `ttl_seconds`."""

    def __init__(
        self,
        url: str,
        *,
        algorithm: Algorithm,
        issuer: str,
        audience: str,
        ttl_seconds: float = 300.0,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.url = url
        self.algorithm: Algorithm = algorithm
        self.issuer = issuer
        self.audience = audience
        self.ttl_seconds = ttl_seconds
        self.fetches = 0
        # Changes whenever the set of keys does (verified tokens are then checked again).
        self.generation = 0
        self._clock = clock
        self._ring: KeyRing | None = None
        self._fetched_at = float("-inf")
        self._lock = asyncio.Lock()

    async def ring(self, kid: str | None = None) -> KeyRing:
        """The current ring; re-fetched when stale, or when `kid` is new (rate-limited)."""
        now = self._clock()
        ring = self._ring
        stale = ring is None or now - self._fetched_at > self.ttl_seconds
        unknown = ring is not None and kid is not None and kid not in ring.kids
        if stale or (unknown and now - self._fetched_at > _MIN_REFRESH_SECONDS):
            async with self._lock:
                if self._fetched_at < now:  # nobody refreshed while we waited
                    await self._refresh()
        if self._ring is None:
            raise Unauthenticated("Access tokens cannot be checked right now")
        return self._ring

    async def prefetch(self) -> None:
        """Fetch the keys now (at start-up); a failure is logged and retried on first use."""
        async with self._lock:
            await self._refresh()
        if self._ring is None:
            self._fetched_at = float("-inf")

    async def _refresh(self) -> None:
        try:
            async with httpx.AsyncClient(timeout=5.0) as client:
                response = await client.get(self.url)
                response.raise_for_status()
                jwks: Mapping[str, Any] = response.json()
            ring = KeyRing.from_jwks(
                jwks, algorithm=self.algorithm, issuer=self.issuer, audience=self.audience
            )
            if self._ring is None or set(ring.kids) != set(self._ring.kids):
                self.generation += 1
            self._ring = ring
            self.fetches += 1
        except (httpx.HTTPError, ValueError, ConfigError) as exc:
            # Keep the previous keys: an auth outage must not sign everybody out.
            log.warning("JWKS fetch from %s failed: %s", self.url, exc)
        self._fetched_at = self._clock()


class EdgeAuthenticator:
    """The caller of a request, checked once at the edge before any subgraph is called.

    A verified token's principal is remembered until the token expires or the issuer's keys
    change: a signature check costs ~0.2 ms of CPU, and a client sends the same token for
    many requests. The revocation check is never remembered.
    """

    def __init__(self, keys: JwksKeys, sessions: SessionRegistry) -> None:
        self.keys = keys
        self.sessions = sessions
        self._verified: dict[str, Principal] = {}
        self._generation = keys.generation

    async def authenticate(self, authorization: str | None) -> Principal | None:
        """None when anonymous; `Unauthenticated` for a bad, expired or revoked token."""
        token = bearer_token(authorization)
        if token is None:
            return None
        if self._generation != self.keys.generation:
            self._verified.clear()
            self._generation = self.keys.generation
        principal = self._verified.get(token)
        if principal is None or principal.expires_at.timestamp() <= time.time():
            ring = await self.keys.ring(_kid(token))
            principal = principal_from_claims(ring.verify(token))
            if len(self._verified) >= _VERIFIED_TOKENS:
                self._verified.clear()
            self._verified[token] = principal
        if await self.sessions.is_revoked(principal.session_id):
            raise Unauthenticated("Session has ended, sign in again")
        label_request(territory=principal.territory_code, user_id=principal.user_id)
        return principal


def _kid(token: str) -> str | None:
    try:
        kid = jose_jwt.get_unverified_header(token).get("kid")
    except JOSEError:
        return None  # the ring's verify refuses it with the generic message
    return kid if isinstance(kid, str) else None
