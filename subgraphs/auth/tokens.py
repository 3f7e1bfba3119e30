"""Opaque secrets the auth subgraph hands out: refresh, reset, verification and invitation tokens.

Only their SHA-256 is looked up; an invitation token, which its creator reads back
(`myInvitations`), is also kept sealed with the data encryption keys. A refresh or account
token starts with its home territory code (`dk.<secret>`), so a request carrying one alone is
routed to the right schema without a global lookup; the code is public anyway (it is in every
federated address).
"""

from __future__ import annotations

import hashlib
import secrets
import uuid

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from core.db.territories import validate_territory_code
from core.errors import BadUserInput
from core.security.secret_box import SecretBox

_SEPARATOR = "."
_NONCE_BYTES = 12


def token_hash(raw: str) -> str:
    """What the database keeps of a token: the SHA-256 hex of its text."""
    return hashlib.sha256(raw.encode()).hexdigest()


def new_territory_token(territory_code: str, *, secret_bytes: int = 32) -> str:
    """`<code>.<urlsafe secret>`, 256 bits of randomness by default."""
    return f"{territory_code}{_SEPARATOR}{secrets.token_urlsafe(secret_bytes)}"


def territory_of(raw: str) -> str | None:
    """The territory a token was issued in, None when the token is not of our shape."""
    code, separator, secret = raw.partition(_SEPARATOR)
    if not separator or len(secret) < 16:
        return None
    try:
        return validate_territory_code(code)
    except BadUserInput:
        return None


def new_invitation_token() -> str:
    """`inv_` and 32 hex characters (128 bits), the original's format."""
    return "inv_" + secrets.token_hex(16)


def _invitation_context(invitation_id: uuid.UUID) -> str:
    return f"invitation_tokens.token:{invitation_id}"


def seal_invitation_token(box: SecretBox, invitation_id: uuid.UUID, token: str) -> str:
    """What the invitation's `token` column keeps: the token sealed for that row."""
    return box.seal(token, _invitation_context(invitation_id))


def invitation_token_in_clear(box: SecretBox, invitation_id: uuid.UUID, stored: str) -> str:
    """The token of an invitation from its `token` column (as it is for rows from before
    sealing, which `seal_stored_secrets` seals)."""
    if not box.is_sealed(stored):
        return stored
    return box.open(stored, _invitation_context(invitation_id))


def new_recovery_code() -> str:
    """A recovery code people can type: 10 base32 characters in two groups (50 bits)."""
    alphabet = "abcdefghjkmnpqrstuvwxyz23456789"
    code = "".join(secrets.choice(alphabet) for _ in range(10))
    return f"{code[:5]}-{code[5:]}"


def normalize_recovery_code(code: str) -> str:
    return code.strip().lower().replace(" ", "")


def _grace_key(old_refresh_token: str) -> bytes:
    # Domain-separated from `token_hash`, so the stored hash never decrypts anything.
    return hashlib.sha256(b"unityplan.refresh-grace:" + old_refresh_token.encode()).digest()


def seal_for_holder(old_refresh_token: str, payload: bytes) -> bytes:
    """Encrypt `payload` so only the holder of `old_refresh_token` can read it back."""
    nonce = secrets.token_bytes(_NONCE_BYTES)
    return nonce + AESGCM(_grace_key(old_refresh_token)).encrypt(nonce, payload, None)


def open_as_holder(old_refresh_token: str, sealed: bytes) -> bytes | None:
    """The payload sealed for this token's holder, None when it does not decrypt."""
    nonce, body = sealed[:_NONCE_BYTES], sealed[_NONCE_BYTES:]
    try:
        return AESGCM(_grace_key(old_refresh_token)).decrypt(nonce, body, None)
    except (InvalidTag, ValueError):
        return None
