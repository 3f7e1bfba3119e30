"""Who is calling: the `Principal` read from a verified, unrevoked access token.

The access-token claim names live here, so the issuer (auth) and every verifier agree on them.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from core.errors import Unauthenticated
from core.observability.http import label_request
from core.security.jwt import KeyRing
from core.security.revocation import SessionRegistry

_BEARER = "bearer"


@dataclass(frozen=True)
class Principal:
    user_id: str
    username: str
    territory_code: str
    session_id: str
    roles: frozenset[str]
    token_id: str
    expires_at: datetime

    def has_role(self, role: str) -> bool:
        return role in self.roles


def access_token_claims(
    *,
    user_id: str,
    username: str,
    territory_code: str,
    session_id: str,
    roles: Iterable[str],
) -> dict[str, Any]:
    """The application claims of an access token; `KeyRing.sign` adds the registered ones."""
    return {
        "sub": user_id,
        "user_id": user_id,
        "username": username,
        "territory_code": territory_code,
        "sid": session_id,
        "roles": sorted(set(roles)),
    }


def _string_claim(claims: dict[str, Any], name: str) -> str:
    value = claims.get(name)
    if not isinstance(value, str) or not value:
        raise Unauthenticated("Invalid or expired access token")
    return value


def principal_from_claims(claims: dict[str, Any]) -> Principal:
    """A Principal from verified claims; `Unauthenticated` when one is missing or mistyped."""
    roles = claims.get("roles", [])
    if not isinstance(roles, list) or not all(isinstance(role, str) for role in roles):
        raise Unauthenticated("Invalid or expired access token")
    user_id = _string_claim(claims, "user_id")
    if claims.get("sub") != user_id:
        raise Unauthenticated("Invalid or expired access token")
    exp = claims.get("exp")
    if not isinstance(exp, int):
        raise Unauthenticated("Invalid or expired access token")
    return Principal(
        user_id=user_id,
        username=_string_claim(claims, "username"),
        territory_code=_string_claim(claims, "territory_code"),
        session_id=_string_claim(claims, "sid"),
        roles=frozenset(roles),
        token_id=_string_claim(claims, "jti"),
        expires_at=datetime.fromtimestamp(exp, tz=UTC),
    )


def bearer_token(authorization_header: str | None) -> str | None:
    """The token of an `Authorization: Bearer <token>` header; None without one."""
    if authorization_header is None or not authorization_header.strip():
        return None
    scheme, _, token = authorization_header.strip().partition(" ")
    token = token.strip()
    if scheme.lower() != _BEARER or not token or " " in token:
        raise Unauthenticated("Malformed Authorization header, expected 'Bearer <token>'")
    return token


async def authenticate(
    authorization_header: str | None, keyring: KeyRing, sessions: SessionRegistry
) -> Principal | None:
    """The caller, None when anonymous; `Unauthenticated` for a bad, expired or revoked token."""
    token = bearer_token(authorization_header)
    if token is None:
        return None
    principal = principal_from_claims(keyring.verify(token))
    if await sessions.is_revoked(principal.session_id):
        raise Unauthenticated("Session has ended, sign in again")
    # The caller's home territory labels the request's metrics unless a handler says otherwise;
    # it comes from a verified token, so the label values stay within the registry.
    label_request(territory=principal.territory_code, user_id=principal.user_id)
    return principal
