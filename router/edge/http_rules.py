"""Browser-facing rules of the router's HTTP edge: CSRF prevention, CORS, which client headers go
on to subgraphs, and who the client is behind trusted proxies. Pure functions of the request
headers and the settings."""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from core.config import RouterSettings, Settings
from core.observability.tracing import TRACE_HEADERS
from router.protocols import HttpProblem

# Content types a browser may send cross-site without a CORS preflight.
_SIMPLE_CONTENT_TYPES = frozenset(
    {"text/plain", "application/x-www-form-urlencoded", "multipart/form-data"}
)
# Headers a cross-site page can only send after a preflight the router's CORS policy decides.
_PREFLIGHT_HEADERS = ("x-apollo-operation-name", "apollo-require-preflight", "graphql-preflight")
# Always forwarded: identity and the W3C trace context.
ALWAYS_FORWARDED = ("authorization", *TRACE_HEADERS)


def check_csrf(method: str, headers: Mapping[str, str]) -> None:
    """Refuse a request a browser could send cross-site without a preflight: a GET, or a POST
    with a simple content type, unless it carries a header that forces the preflight."""
    if method not in {"GET", "POST"}:
        return
    content_type = headers.get("content-type", "").split(";")[0].strip().lower()
    simple = method == "GET" or not content_type or content_type in _SIMPLE_CONTENT_TYPES
    if simple and not any(headers.get(name) for name in _PREFLIGHT_HEADERS):
        raise HttpProblem(
            400,
            "This request has been blocked as a potential Cross-Site Request Forgery: send it"
            " with Content-Type: application/json, or with an `apollo-require-preflight` or"
            " `x-apollo-operation-name` header",
        )


@dataclass(frozen=True, slots=True)
class CorsPolicy:
    origins: frozenset[str]
    allow_credentials: bool

    @classmethod
    def from_settings(cls, settings: RouterSettings) -> CorsPolicy:
        return cls(frozenset(settings.cors_origins), settings.cors_allow_credentials)

    def headers(self, request_headers: Mapping[str, str], *, preflight: bool) -> dict[str, str]:
        """The CORS response headers for this request's Origin (none when it is not allowed)."""
        origin = request_headers.get("origin")
        if not origin or not self.origins:
            return {}
        any_origin = "*" in self.origins
        if origin not in self.origins and not any_origin:
            return {}
        # A wildcard never goes with credentials: then the origin is named, as browsers demand.
        found = {"access-control-allow-origin": origin, "vary": "Origin"}
        if any_origin and not self.allow_credentials:
            found = {"access-control-allow-origin": "*"}
        if self.allow_credentials:
            found["access-control-allow-credentials"] = "true"
        if preflight:
            found["access-control-allow-methods"] = "GET, POST, OPTIONS"
            asked = request_headers.get("access-control-request-headers")
            found["access-control-allow-headers"] = asked or "content-type, authorization"
            found["access-control-max-age"] = "600"
        return found


@dataclass(frozen=True, slots=True)
class HeaderRules:
    """Client headers passed to subgraphs: some to all, some only to named subgraphs."""

    common: tuple[str, ...]
    # header -> the subgraphs it goes to (headers not here go to every subgraph)
    only_to: Mapping[str, frozenset[str]]

    @classmethod
    def from_settings(cls, settings: RouterSettings) -> HeaderRules:
        common = {*ALWAYS_FORWARDED, *(h.lower() for h in settings.propagate_headers)}
        only_to: dict[str, set[str]] = {}
        for subgraph, names in settings.propagate_headers_by_subgraph.items():
            for name in names:
                if name.lower() not in common:
                    only_to.setdefault(name.lower(), set()).add(subgraph)
        return cls(
            tuple(sorted(common)) + tuple(sorted(only_to)),
            {name: frozenset(subgraphs) for name, subgraphs in only_to.items()},
        )

    def forwarded(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {name: headers[name] for name in self.common if name in headers}


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


# Client addresses remembered by TrustedProxies (bounded by dropping all when full).
_REMEMBERED_ADDRESSES = 10_000
_UNSEEN = object()


class TrustedProxies:
    """The proxies in front of the router (TRUSTED_PROXIES) whose X-Forwarded-For it believes."""

    def __init__(self, cidrs: Sequence[str]) -> None:
        self.networks = tuple(ipaddress.ip_network(cidr, strict=False) for cidr in cidrs)
        self._seen: dict[tuple[Any, str], str | None] = {}

    @classmethod
    def from_settings(cls, settings: Settings) -> TrustedProxies:
        return cls(settings.security.trusted_proxies)

    def trusts(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)

    def client_address(self, headers: Mapping[str, str], peer: Sequence[Any] | None) -> str | None:
        """The caller's IP. A peer that is no trusted proxy is the client, whatever it sends.
        Behind trusted proxies, X-Forwarded-For is read from the right (each proxy appends the
        address it saw): trusted hops are skipped, and the first other address is the client;
        what lies left of it was written by the client and is never believed. Answers are
        remembered per (peer, header): parsing addresses is most of the cost, and clients
        reconnect with the same ones."""
        host = peer[0] if peer else None
        key = (host, headers.get("x-forwarded-for", "") if self.networks else "")
        found = self._seen.get(key, _UNSEEN)
        if found is _UNSEEN:
            if len(self._seen) >= _REMEMBERED_ADDRESSES:
                self._seen.clear()
            found = self._seen[key] = self._client_address(headers, host)
        return found  # type: ignore[return-value]

    def _client_address(self, headers: Mapping[str, str], host: Any) -> str | None:
        address = _ip(host) if isinstance(host, str) else None
        if address is None or not self.networks or not self.trusts(address):
            return str(address) if address is not None else None
        for entry in reversed(headers.get("x-forwarded-for", "").split(",")):
            hop = _ip(entry.strip())
            if hop is None:
                break  # garbage: nothing left of it can be told apart from the client's own
            address = hop
            if not self.trusts(hop):
                break
        return str(address)


def _ip(value: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(value.removeprefix("[").removesuffix("]"))
    except ValueError:
        return None
