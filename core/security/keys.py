"""JWT signing keys: loading PEM keys from configuration, generating development keys, JWK forms.

A key's `kid` is its RFC 7638 thumbprint, so the same key always has the same id everywhere.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import os
import secrets
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from jose import jwk as jose_jwk

from core.errors import ConfigError

Algorithm = Literal["ES256", "RS256"]

_RSA_KEY_BITS = 3072


@dataclass(frozen=True)
class SigningKey:
    """One asymmetric key of the ring, with its public JWK and thumbprint id.

    `private_pem` is None for a key known only from a JWKS: it verifies, it cannot sign.
    """

    kid: str
    algorithm: Algorithm
    private_pem: str | None
    public_pem: str
    public_jwk: dict[str, str]


def _b64url_uint(value: int) -> str:
    length = max(1, (value.bit_length() + 7) // 8)
    return base64.urlsafe_b64encode(value.to_bytes(length, "big")).rstrip(b"=").decode("ascii")


def _b64url_fixed(value: int, length: int) -> str:
    # EC coordinates keep their full field length (RFC 7518 6.2.1.2), leading zeros included.
    return base64.urlsafe_b64encode(value.to_bytes(length, "big")).rstrip(b"=").decode("ascii")


def _required_members(jwk: dict[str, str]) -> dict[str, str]:
    members = ("crv", "kty", "x", "y") if jwk["kty"] == "EC" else ("e", "kty", "n")
    return {name: jwk[name] for name in members}


def thumbprint(jwk: dict[str, str]) -> str:
    """RFC 7638 SHA-256 thumbprint of a public JWK, base64url without padding."""
    canonical = json.dumps(_required_members(jwk), separators=(",", ":"), sort_keys=True)
    digest = hashlib.sha256(canonical.encode("utf-8")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def load_signing_key(private_pem: str, algorithm: Algorithm) -> SigningKey:
    """Parse a PEM private key; ES256 needs a P-256 key, RS256 an RSA key of 2048+ bits."""
    try:
        private_key = serialization.load_pem_private_key(private_pem.encode("utf-8"), password=None)
    except (ValueError, TypeError) as exc:
        message = "JWT_PRIVATE_KEYS: an entry is not an unencrypted PEM private key"
        raise ConfigError(message) from exc
    jwk: dict[str, str]
    if algorithm == "ES256":
        if not isinstance(private_key, ec.EllipticCurvePrivateKey) or not isinstance(
            private_key.curve, ec.SECP256R1
        ):
            raise ConfigError("JWT_PRIVATE_KEYS: ES256 needs P-256 elliptic-curve keys")
        numbers = private_key.public_key().public_numbers()
        jwk = {
            "kty": "EC",
            "crv": "P-256",
            "x": _b64url_fixed(numbers.x, 32),
            "y": _b64url_fixed(numbers.y, 32),
        }
    else:
        if not isinstance(private_key, rsa.RSAPrivateKey) or private_key.key_size < 2048:
            raise ConfigError("JWT_PRIVATE_KEYS: RS256 needs RSA keys of at least 2048 bits")
        rsa_numbers = private_key.public_key().public_numbers()
        jwk = {"kty": "RSA", "n": _b64url_uint(rsa_numbers.n), "e": _b64url_uint(rsa_numbers.e)}
    kid = thumbprint(jwk)
    public_pem = (
        private_key.public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
        .decode("ascii")
    )
    return SigningKey(
        kid=kid,
        algorithm=algorithm,
        private_pem=private_pem,
        public_pem=public_pem,
        public_jwk={**jwk, "kid": kid, "alg": algorithm, "use": "sig"},
    )


def load_public_jwk(jwk: Mapping[str, Any], algorithm: Algorithm) -> SigningKey:
    """A verify-only key from a public JWK of a JWKS; its `kid` must be its RFC 7638 thumbprint."""
    expected_kty = "EC" if algorithm == "ES256" else "RSA"
    if jwk.get("kty") != expected_kty or jwk.get("alg", algorithm) != algorithm:
        raise ValueError(f"JWK is not an {algorithm} key")
    if algorithm == "ES256" and jwk.get("crv") != "P-256":
        raise ValueError("ES256 needs a P-256 key")
    public = {name: str(jwk[name]) for name in _required_members(dict(jwk))}
    kid = thumbprint(public)
    if jwk.get("kid", kid) != kid:
        raise ValueError("JWK kid is not its thumbprint")
    public_pem = jose_jwk.construct(public, algorithm).to_pem().decode("ascii")
    return SigningKey(
        kid=kid,
        algorithm=algorithm,
        private_pem=None,
        public_pem=public_pem,
        public_jwk={**public, "kid": kid, "alg": algorithm, "use": "sig"},
    )


def generate_private_pem(algorithm: Algorithm) -> str:
    """A fresh PEM (PKCS#8, unencrypted) private key for `algorithm`."""
    private_key: ec.EllipticCurvePrivateKey | rsa.RSAPrivateKey
    if algorithm == "ES256":
        private_key = ec.generate_private_key(ec.SECP256R1())
    else:
        private_key = rsa.generate_private_key(public_exponent=65537, key_size=_RSA_KEY_BITS)
    return private_key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    ).decode("ascii")


def development_key(keys_dir: Path, algorithm: Algorithm) -> SigningKey:
    """The development signing key in `keys_dir`, generated (mode 0600) on first use."""
    pem = development_file(
        keys_dir / f"jwt-{algorithm.lower()}.pem", lambda: generate_private_pem(algorithm)
    )
    return load_signing_key(pem, algorithm)


def development_secret(keys_dir: Path, name: str) -> str:
    """A development symmetric secret (256 random bits, base64url) kept in `keys_dir/name`."""
    return development_file(keys_dir / name, lambda: secrets.token_urlsafe(32)).strip()


def development_file(path: Path, generate: Callable[[], str]) -> str:
    """The text of `path`, written (mode 0600) from `generate()` when it does not exist yet.

    Several services start at once in `unityplan dev`; publishing the file with a hard link makes
    exactly one generated value win, and every process then reads that one.
    """
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    if not path.exists():
        pending = path.parent / f".{path.name}.{os.getpid()}.{secrets.token_hex(4)}"
        descriptor = os.open(pending, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            with os.fdopen(descriptor, "w", encoding="ascii") as handle:
                handle.write(generate())
            # When another process published its file first, use that one.
            with contextlib.suppress(FileExistsError):
                os.link(pending, path)
        finally:
            pending.unlink(missing_ok=True)
    return path.read_text(encoding="ascii")


def public_jwks(keys: list[SigningKey]) -> dict[str, Any]:
    """A JWK Set of the public halves of `keys`."""
    return {"keys": [dict(key.public_jwk) for key in keys]}
