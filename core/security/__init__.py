"""Security primitives every service shares: passwords, access tokens, revocation, the caller."""

from core.security.jwt import JWKS_PATH, KeyRing
from core.security.keys import (
    SigningKey,
    development_key,
    generate_private_pem,
    load_public_jwk,
    load_signing_key,
)
from core.security.passwords import PasswordHasher
from core.security.principal import (
    Principal,
    access_token_claims,
    authenticate,
    bearer_token,
    principal_from_claims,
)
from core.security.revocation import SessionRegistry

__all__ = [
    "JWKS_PATH",
    "KeyRing",
    "PasswordHasher",
    "Principal",
    "SessionRegistry",
    "SigningKey",
    "access_token_claims",
    "authenticate",
    "bearer_token",
    "development_key",
    "generate_private_pem",
    "load_public_jwk",
    "load_signing_key",
    "principal_from_claims",
]
