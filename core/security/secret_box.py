"""Encryption of secrets the services must read back (TOTP secrets): AES-256-GCM with keys from
DATA_ENCRYPTION_KEYS, newest first. The newest encrypts; every key decrypts, so keys rotate by
adding a new one first, re-encrypting (`needs_rotation` says which values to redo), then
removing the old one.

A sealed value is `v1.<key id>.<base64url nonce + ciphertext>`, bound to a context (the table,
column and row it belongs in), so a value copied into another row does not decrypt.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Sequence
from pathlib import Path

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.config import Settings
from core.errors import ConfigError
from core.security.keys import development_secret

_VERSION = "v1"
_NONCE_BYTES = 12
_DEV_KEY_FILE = "data-encryption.key"


class SealedValueError(Exception):
    """A sealed value that is malformed, by an unknown key, or not of this context."""


def _key_id(secret: str) -> str:
    return hashlib.sha256(b"unityplan.data-key-id:" + secret.encode()).hexdigest()[:8]


def _aes_key(secret: str) -> bytes:
    # The configured secret is text of 256+ bits of entropy; this makes it an AES-256 key.
    return hashlib.sha256(b"unityplan.data-key:" + secret.encode()).digest()


def data_encryption_keys(settings: Settings) -> list[str]:
    """DATA_ENCRYPTION_KEYS (newest first); outside production, a generated development key."""
    keys = settings.security.data_encryption_keys
    if keys:
        return list(keys)
    if settings.is_production:
        raise ConfigError("DATA_ENCRYPTION_KEYS: required in production (secrets, newest first)")
    return [development_secret(Path(settings.devstack.dir) / "keys", _DEV_KEY_FILE)]


class SecretBox:
    def __init__(self, secrets_newest_first: Sequence[str]) -> None:
        if not secrets_newest_first:
            raise ConfigError("DATA_ENCRYPTION_KEYS: at least one key is required")
        self._ciphers = {
            _key_id(secret): AESGCM(_aes_key(secret)) for secret in secrets_newest_first
        }
        self.current_key_id = _key_id(secrets_newest_first[0])

    @classmethod
    def from_settings(cls, settings: Settings) -> SecretBox:
        return cls(data_encryption_keys(settings))

    def seal(self, plaintext: str, context: str) -> str:
        nonce = secrets.token_bytes(_NONCE_BYTES)
        cipher = self._ciphers[self.current_key_id]
        body = nonce + cipher.encrypt(nonce, plaintext.encode(), context.encode())
        encoded = base64.urlsafe_b64encode(body).rstrip(b"=").decode("ascii")
        return f"{_VERSION}.{self.current_key_id}.{encoded}"

    def open(self, sealed: str, context: str) -> str:
        version, _, rest = sealed.partition(".")
        kid, _, encoded = rest.partition(".")
        cipher = self._ciphers.get(kid)
        if version != _VERSION or cipher is None or not encoded:
            raise SealedValueError("not a sealed value of a known key")
        try:
            body = base64.urlsafe_b64decode(encoded + "=" * (-len(encoded) % 4))
            nonce, ciphertext = body[:_NONCE_BYTES], body[_NONCE_BYTES:]
            return cipher.decrypt(nonce, ciphertext, context.encode()).decode()
        except (InvalidTag, ValueError) as exc:
            raise SealedValueError("the sealed value does not decrypt in this context") from exc

    @staticmethod
    def is_sealed(value: str) -> bool:
        return value.startswith(_VERSION + ".") and value.count(".") == 2

    @property
    def sealed_prefix(self) -> str:
        """How every value sealed with the newest key starts."""
        return f"{_VERSION}.{self.current_key_id}."

    def needs_rotation(self, sealed: str) -> bool:
        """Whether `sealed` is not (yet) under the newest key."""
        return not sealed.startswith(self.sealed_prefix)
