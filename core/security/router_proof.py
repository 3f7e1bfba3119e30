"""Proof that a request to a subgraph comes from the router: an HMAC-SHA256, with a secret only
the router and the subgraphs hold, over the request's method, path, body digest, a timestamp,
and the client's address and User-Agent the router vouches for.

The router signs with the newest key; a subgraph accepts any configured key (two during a
rotation) and a timestamp within SUBGRAPH_PROOF_MAX_AGE_SECONDS of its own clock.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

from core.config import Settings
from core.errors import ConfigError
from core.security.keys import development_secret

# `v1.<key id>.<unix seconds>.<base64url HMAC>`
PROOF_HEADER = "x-router-proof"
# The client's address as the router determined it (one IP), and its User-Agent: both signed.
CLIENT_ADDRESS_HEADER = "x-forwarded-for"
CLIENT_AGENT_HEADER = "user-agent"
_VERSION = "v1"
_DEV_KEY_FILE = "subgraph-signing.key"
# SHA-256 of the empty body (a WebSocket upgrade, a GET).
EMPTY_BODY_DIGEST = hashlib.sha256(b"").hexdigest()


class ProofRefused(Exception):
    """The request carries no valid router proof; the message says why (for logs, not clients)."""


def key_id(secret: str) -> str:
    """A short public name of a key, so a subgraph picks the right one without trying each."""
    return hashlib.sha256(secret.encode()).hexdigest()[:8]


def signing_keys(settings: Settings) -> list[str]:
    """SUBGRAPH_SIGNING_KEYS (newest first); outside production, a generated development key."""
    keys = settings.security.subgraph_signing_keys
    if keys:
        return list(keys)
    if settings.is_production:
        raise ConfigError(
            "SUBGRAPH_SIGNING_KEYS: required in production (shared secrets, newest first)"
        )
    return [development_secret(Path(settings.devstack.dir) / "keys", _DEV_KEY_FILE)]


def _message(
    timestamp: str, method: str, path: str, body_digest: str, client: str, agent: str
) -> bytes:
    # Newlines cannot occur in any part (header values and paths carry none), so the parts
    # cannot be shifted into one another.
    return "\n".join((_VERSION, timestamp, method, path, body_digest, client, agent)).encode()


def _mac(key: hmac.HMAC, message: bytes) -> str:
    mac = key.copy()
    mac.update(message)
    return base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode("ascii")


class RouterSigner:
    """Signs the router's requests to subgraphs with the newest key."""

    def __init__(self, secret: str) -> None:
        self.key_id = key_id(secret)
        # The keyed state is set up once; each signature copies it.
        self._key = hmac.new(secret.encode(), digestmod=hashlib.sha256)

    @classmethod
    def from_settings(cls, settings: Settings) -> RouterSigner:
        return cls(signing_keys(settings)[0])

    def headers(
        self,
        method: str,
        path: str,
        body: bytes | None,
        forwarded: Mapping[str, str],
    ) -> dict[str, str]:
        """The proof header for this request; `forwarded` holds the vouched client headers."""
        digest = hashlib.sha256(body).hexdigest() if body else EMPTY_BODY_DIGEST
        timestamp = str(int(time.time()))
        message = _message(
            timestamp,
            method,
            path,
            digest,
            forwarded.get(CLIENT_ADDRESS_HEADER, ""),
            forwarded.get(CLIENT_AGENT_HEADER, ""),
        )
        return {PROOF_HEADER: f"{_VERSION}.{self.key_id}.{timestamp}.{_mac(self._key, message)}"}


@dataclass(frozen=True, slots=True)
class PendingProof:
    """A proof whose header was checked (version, key, age); the body decides the rest."""

    key: hmac.HMAC
    timestamp: str
    mac: str
    key_id: str


class ProofVerifier:
    """Checks router proofs with every configured key."""

    def __init__(self, secrets: Sequence[str], *, max_age_seconds: float = 30.0) -> None:
        if not secrets:
            raise ConfigError("SUBGRAPH_SIGNING_KEYS: at least one key is required")
        self.max_age_seconds = max_age_seconds
        self._keys = {
            key_id(secret): hmac.new(secret.encode(), digestmod=hashlib.sha256)
            for secret in secrets
        }

    @classmethod
    def from_settings(cls, settings: Settings) -> ProofVerifier:
        return cls(
            signing_keys(settings),
            max_age_seconds=settings.security.subgraph_proof_max_age_seconds,
        )

    def check_header(self, header: str | None) -> PendingProof:
        """The parts of a well-formed, fresh proof by a known key; raises `ProofRefused`."""
        if not header:
            raise ProofRefused("no router proof")
        parts = header.split(".")
        if len(parts) != 4 or parts[0] != _VERSION:
            raise ProofRefused("malformed router proof")
        _, kid, timestamp, mac = parts
        key = self._keys.get(kid)
        if key is None:
            raise ProofRefused("router proof by an unknown key")
        if not timestamp.isascii() or not timestamp.isdigit():
            raise ProofRefused("malformed router proof timestamp")
        if abs(time.time() - int(timestamp)) > self.max_age_seconds:
            raise ProofRefused("router proof expired")
        return PendingProof(key, timestamp, mac, kid)

    def verify(
        self,
        pending: PendingProof,
        method: str,
        path: str,
        body_digest: str,
        headers: Mapping[str, str],
    ) -> None:
        """Raises `ProofRefused` unless the proof signs exactly this request."""
        message = _message(
            pending.timestamp,
            method,
            path,
            body_digest,
            headers.get(CLIENT_ADDRESS_HEADER, ""),
            headers.get(CLIENT_AGENT_HEADER, ""),
        )
        if not hmac.compare_digest(_mac(pending.key, message), pending.mac):
            raise ProofRefused("router proof does not match the request")
