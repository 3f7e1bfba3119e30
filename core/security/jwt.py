"""Signing and verifying access tokens: a ring of asymmetric keys, the newest signs, all verify.

Only the ring's own algorithm is accepted; `none`, HS* and unknown `kid`s are refused before any
signature check, so a public key can never be used as an HMAC secret.
"""

from __future__ import annotations

import logging
import secrets
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from jose import jwk as jose_jwk
from jose import jwt as jose_jwt
from jose.backends.base import Key
from jose.exceptions import JOSEError

from core.config import Settings
from core.errors import ConfigError, Unauthenticated
from core.security.keys import (
    Algorithm,
    SigningKey,
    development_key,
    load_public_jwk,
    load_signing_key,
    public_jwks,
)

logger = logging.getLogger(__name__)

DEFAULT_LEEWAY_SECONDS = 10
# Where the service issuing access tokens publishes the public keys they are verified with.
JWKS_PATH = "/.well-known/jwks.json"
_INVALID_TOKEN_MESSAGE = "Invalid or expired access token"  # noqa: S105 - a message, not a secret
# Set by the ring itself; a caller's values for these are replaced (except `jti`, see `sign`).
_REGISTERED_CLAIMS = ("iat", "nbf", "exp", "iss", "aud")


class KeyRing:
    """The keys of one issuer: `keys[0]` signs, every key verifies tokens it signed earlier."""

    def __init__(
        self,
        keys: Sequence[SigningKey],
        *,
        issuer: str,
        audience: str,
        leeway_seconds: int = DEFAULT_LEEWAY_SECONDS,
    ) -> None:
        if not keys:
            raise ConfigError("JWT_PRIVATE_KEYS: at least one signing key is required")
        algorithms = {key.algorithm for key in keys}
        if len(algorithms) != 1:
            raise ConfigError("JWT_PRIVATE_KEYS: every key of the ring must use JWT_ALGORITHM")
        self.algorithm: Algorithm = keys[0].algorithm
        self.issuer = issuer
        self.audience = audience
        self.leeway_seconds = leeway_seconds
        self._keys = list(keys)
        signing_pem = keys[0].private_pem
        self._signer: Key | None = (
            jose_jwk.construct(signing_pem, self.algorithm) if signing_pem else None
        )
        self._verifiers: dict[str, Key] = {
            key.kid: jose_jwk.construct(key.public_pem, self.algorithm) for key in keys
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> KeyRing:
        """Production keys from JWT_PRIVATE_KEYS; elsewhere, when none are set, the devstack key."""
        security = settings.security
        algorithm: Algorithm = security.jwt_algorithm
        if security.jwt_private_keys:
            keys = [load_signing_key(pem, algorithm) for pem in security.jwt_private_keys]
        elif settings.is_production:
            raise ConfigError("JWT_PRIVATE_KEYS: required in production (PEM keys, newest first)")
        else:
            keys = [development_key(Path(settings.devstack.dir) / "keys", algorithm)]
        return cls(keys, issuer=security.jwt_issuer, audience=security.jwt_audience)

    @classmethod
    def from_jwks(
        cls,
        jwks: Mapping[str, Any],
        *,
        algorithm: Algorithm,
        issuer: str,
        audience: str,
    ) -> KeyRing:
        """A verify-only ring from the issuer's published JWKS, for services that never sign.

        Keys of another algorithm, or whose `kid` is not their thumbprint, are left out.
        """
        keys = []
        for entry in jwks.get("keys", []):
            try:
                keys.append(load_public_jwk(entry, algorithm))
            except (ValueError, KeyError, TypeError, AttributeError, JOSEError):
                logger.warning(
                    "JWKS entry %r skipped: not a usable %s key",
                    entry.get("kid") if isinstance(entry, Mapping) else None,
                    algorithm,
                )
        if not keys:
            raise ConfigError(f"The issuer's JWKS has no usable {algorithm} key")
        return cls(keys, issuer=issuer, audience=audience)

    @property
    def can_sign(self) -> bool:
        return self._signer is not None

    @property
    def signing_kid(self) -> str:
        return self._keys[0].kid

    @property
    def kids(self) -> list[str]:
        return [key.kid for key in self._keys]

    def sign(self, claims: Mapping[str, Any], *, ttl_seconds: int) -> str:
        """A token carrying `claims` plus iat/nbf/exp/iss/aud and a `jti` (kept if given)."""
        if self._signer is None:
            raise RuntimeError("this key ring only verifies: it was built from public keys")
        now = int(time.time())
        payload = {key: value for key, value in claims.items() if key not in _REGISTERED_CLAIMS}
        payload.update(
            iat=now,
            nbf=now,
            exp=now + ttl_seconds,
            iss=self.issuer,
            aud=self.audience,
        )
        payload.setdefault("jti", secrets.token_urlsafe(16))
        token: str = jose_jwt.encode(
            payload,
            self._signer,
            algorithm=self.algorithm,
            headers={"kid": self.signing_kid, "typ": "JWT"},
        )
        return token

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of a valid token; `Unauthenticated` (generic message) for anything else."""
        try:
            header = jose_jwt.get_unverified_header(token)
        except JOSEError as exc:
            raise self._refuse("malformed header") from exc
        if header.get("alg") != self.algorithm:
            raise self._refuse(f"algorithm {header.get('alg')!r} not allowed")
        kid = header.get("kid")
        verifier = self._verifiers.get(kid) if isinstance(kid, str) else None
        if verifier is None:
            raise self._refuse("unknown kid")
        try:
            claims: dict[str, Any] = jose_jwt.decode(
                token,
                verifier,
                algorithms=[self.algorithm],
                audience=self.audience,
                issuer=self.issuer,
                options={
                    "require_exp": True,
                    "require_iat": True,
                    "require_iss": True,
                    "require_aud": True,
                    "require_jti": True,
                    "leeway": self.leeway_seconds,
                },
            )
        except JOSEError as exc:
            raise self._refuse(type(exc).__name__) from exc
        return claims

    def jwks(self) -> dict[str, Any]:
        """The JWK Set clients and other services verify with: public parameters only."""
        return public_jwks(self._keys)

    @staticmethod
    def _refuse(reason: str) -> Unauthenticated:
        # The reason helps operators; clients only ever see the generic message.
        logger.debug("access token refused: %s", reason)
        return Unauthenticated(_INVALID_TOKEN_MESSAGE)
