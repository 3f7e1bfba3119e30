"""The router's edge, assembled from settings: who the caller is, which document runs, what
may be introspected, and the browser rules. One per router app, shared by every request."""

from __future__ import annotations

import hmac
import logging
from collections.abc import Mapping, Sequence
from typing import Any

from prometheus_client import CollectorRegistry, Counter
from redis.asyncio import Redis
from redis.exceptions import RedisError

from core.cache import create_redis
from core.config import Settings
from core.errors import ConfigError
from core.security import Principal, SessionRegistry
from core.security.router_proof import CLIENT_ADDRESS_HEADER, CLIENT_AGENT_HEADER, PROOF_HEADER
from router.edge.authentication import EdgeAuthenticator, JwksKeys
from router.edge.http_rules import CorsPolicy, HeaderRules, TrustedProxies
from router.edge.persisted import AutomaticPersistedQueries, TrustedDocuments
from router.protocols import HttpProblem, OperationRequest

log = logging.getLogger("unityplan.router.edge")

INTROSPECTION_KEY_HEADER = "x-introspection-key"
FORWARDED_FOR = CLIENT_ADDRESS_HEADER
USER_AGENT = CLIENT_AGENT_HEADER
# Longer agents are cut (sessions store at most this much of one).
MAX_USER_AGENT = 512


def jwks_url(settings: Settings) -> str:
    """ROUTER_JWKS_URL: where the keys of the access tokens the router verifies are published
    (when served, the service registry points it at the subgraph issuing them)."""
    if not settings.router.jwks_url:
        raise ConfigError(
            "ROUTER_JWKS_URL: not set, but the router verifies access tokens with the keys "
            "published there"
        )
    return settings.router.jwks_url


def verification_on(settings: Settings) -> bool:
    """Whether the router verifies access tokens itself. Always in production; `auto` (the
    default) when REDIS_URL is set, since a verified token must also be checked against the
    revocations kept there. Verification without Redis is a configuration error."""
    router = settings.router
    verify = settings.is_production or router.verify_tokens is True
    if verify and not settings.redis.url:
        raise ConfigError(
            "REDIS_URL: not set, but token verification"
            f" ({'APP_ENV=production' if settings.is_production else 'ROUTER_VERIFY_TOKENS=true'})"
            " checks revoked sessions in Redis: set REDIS_URL"
            + ("" if settings.is_production else ", or ROUTER_VERIFY_TOKENS=auto to pass tokens on")
        )
    if router.verify_tokens is None and not settings.is_production:
        verify = bool(settings.redis.url)
        if not verify:
            log.warning(
                "REDIS_URL is not set: access tokens are passed on to the subgraphs unverified"
                " and persisted queries are kept in this process only"
            )
    return verify


class Edge:
    def __init__(self, settings: Settings) -> None:
        router = settings.router
        self.production = settings.is_production
        self.csrf_prevention = router.csrf_prevention
        self.cors = CorsPolicy.from_settings(router)
        self.header_rules = HeaderRules.from_settings(router)
        self._refusals: Counter | None = None
        self.proxies = TrustedProxies.from_settings(settings)
        self.introspection_role = router.introspection_role
        self.introspection_key = router.introspection_key
        self.trusted = (
            TrustedDocuments.load(router.trusted_documents_path)
            if router.trusted_documents_path
            else None
        )
        verify = verification_on(settings)
        uses_redis = verify or (router.apq_ttl_seconds > 0 and self.trusted is None)
        self.redis: Redis | None = (
            create_redis(settings.redis) if uses_redis and settings.redis.url else None
        )
        self.authenticator: EdgeAuthenticator | None = None
        if verify and self.redis is not None:
            keys = JwksKeys(
                jwks_url(settings),
                algorithm=settings.security.jwt_algorithm,
                issuer=settings.security.jwt_issuer,
                audience=settings.security.jwt_audience,
                ttl_seconds=router.jwks_cache_seconds,
            )
            self.authenticator = EdgeAuthenticator(
                keys, SessionRegistry.from_settings(self.redis, settings)
            )
        self.apq: AutomaticPersistedQueries | None = None
        # Without Redis, persisted queries live in this process only (each replica learns them).
        if self.trusted is None and router.apq_ttl_seconds > 0:
            self.apq = AutomaticPersistedQueries(
                self.redis, settings.redis.key_prefix, router.apq_ttl_seconds
            )

    def forwarded(self, headers: Mapping[str, str], peer: Sequence[Any] | None) -> dict[str, str]:
        """The headers sent on to subgraphs: the propagation rules', and the client's address
        (X-Forwarded-For, one IP) and User-Agent, which the router's proof vouches for, so the
        subgraphs' per-IP limits and session records name the client, not the router."""
        found = self.header_rules.forwarded(headers)
        found.pop(FORWARDED_FOR, None)
        found.pop(PROOF_HEADER, None)
        address = self.proxies.client_address(headers, peer)
        if address is not None:
            found[FORWARDED_FOR] = address
        agent = headers.get(USER_AGENT)
        if agent:
            found[USER_AGENT] = agent[:MAX_USER_AGENT]
        return found

    async def authenticate(self, authorization: str | None) -> Principal | None:
        """The verified caller (None when anonymous); raises `Unauthenticated`."""
        if self.authenticator is None:
            return None
        try:
            return await self.authenticator.authenticate(authorization)
        except RedisError as exc:
            # Fail closed: without the revocation registry a signed-out token might pass.
            log.error("revocation registry unavailable: %s", exc)
            raise HttpProblem(503, "Sign-in cannot be checked right now, try again") from exc

    async def document(self, request: OperationRequest) -> OperationRequest:
        """The request with the document that will run (persisted or trusted documents)."""
        if self.trusted is not None:
            return self.trusted.resolve(request)
        if self.apq is not None:
            return await self.apq.resolve(request)
        return request

    def may_introspect(self, principal: Principal | None, headers: Mapping[str, str]) -> bool:
        if not self.production:
            return True
        if principal is not None and principal.has_role(self.introspection_role):
            return True
        offered = headers.get(INTROSPECTION_KEY_HEADER)
        return bool(
            self.introspection_key
            and offered
            and hmac.compare_digest(offered.encode(), self.introspection_key.encode())
        )

    def measure(self, registry: CollectorRegistry) -> None:
        """Count refusals in the router's metrics registry from now on."""
        self._refusals = Counter(
            "router_edge_refusals",
            "Requests the edge refused, by reason: unauthenticated, operation_limit, csrf,"
            " introspection, persisted_query",
            ["reason"],
            registry=registry,
        )

    def refused(self, reason: str) -> None:
        if self._refusals is not None:
            self._refusals.labels(reason).inc()

    async def start(self) -> None:
        """Fetch the issuer's keys before the first request needs them."""
        if self.authenticator is not None:
            await self.authenticator.keys.prefetch()

    async def close(self) -> None:
        if self.redis is not None:
            await self.redis.aclose()
