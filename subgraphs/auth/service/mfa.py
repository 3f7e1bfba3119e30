"""TOTP second factor (RFC 6238, 30 s steps, one step of clock drift) and recovery codes.

A code is accepted once: the last accepted time step is stored, and only later steps pass, so
a code seen by someone else cannot be replayed within its window. Recovery codes are single use
and stored hashed. TOTP secrets are stored sealed (`core.security.secret_box`, bound to their
row); a secret under an older key, or from before sealing, is sealed anew when it is next
used, and at start-up (`secrets_at_rest`).
"""

from __future__ import annotations

import hmac
import time
import uuid
from dataclasses import dataclass

import pyotp

from core.errors import BadUserInput, Conflict
from core.kit.repository import ClientInfo
from core.security.secret_box import SecretBox
from subgraphs.auth import events
from subgraphs.auth.models import MfaSecret, User
from subgraphs.auth.repository import TerritoryRepository
from subgraphs.auth.runtime import utcnow
from subgraphs.auth.tokens import new_recovery_code, normalize_recovery_code, token_hash

ISSUER = "UnityPlan"
STEP_SECONDS = 30
RECOVERY_CODES = 10
_DRIFT_STEPS = (0, -1, 1)


@dataclass(frozen=True)
class Enrollment:
    secret: str
    otpauth_uri: str


def current_step(now: float | None = None) -> int:
    return int((time.time() if now is None else now) // STEP_SECONDS)


def _context(user_id: uuid.UUID) -> str:
    return f"mfa_secrets.secret:{user_id}"


def totp_secret(box: SecretBox, row: MfaSecret) -> str:
    """The row's TOTP secret in clear; sealed anew (in the row) when not under the newest key."""
    if not box.is_sealed(row.secret):
        plain = row.secret  # written before secrets were sealed
    else:
        plain = box.open(row.secret, _context(row.user_id))
        if not box.needs_rotation(row.secret):
            return plain
    row.secret = box.seal(plain, _context(row.user_id))
    return plain


def accept_totp(box: SecretBox, secret: MfaSecret, code: str, *, now: float | None = None) -> bool:
    """Whether `code` is a fresh TOTP code; marks its step used when it is."""
    code = code.strip().replace(" ", "")
    if not code.isdigit() or len(code) != 6:
        return False
    totp = pyotp.TOTP(totp_secret(box, secret))
    step = current_step(now)
    for offset in _DRIFT_STEPS:
        candidate = step + offset
        if hmac.compare_digest(totp.generate_otp(candidate), code):
            if secret.last_used_step is not None and candidate <= secret.last_used_step:
                return False  # replayed (or an older code after a newer one)
            secret.last_used_step = candidate
            return True
    return False


async def accept_second_factor(
    box: SecretBox, repo: TerritoryRepository, user_id: uuid.UUID, code: str
) -> bool:
    """A TOTP code or an unused recovery code (which is then spent)."""
    secret = await repo.mfa_secret(user_id, for_update=True)
    if secret is None or secret.enabled_at is None:
        return False
    if accept_totp(box, secret, code):
        await repo.flush()
        return True
    recovery = await repo.unused_recovery_code(user_id, token_hash(normalize_recovery_code(code)))
    if recovery is not None:
        recovery.used_at = utcnow()
        await repo.flush()
        return True
    return False


async def mfa_enabled(repo: TerritoryRepository, user_id: uuid.UUID) -> bool:
    secret = await repo.mfa_secret(user_id)
    return secret is not None and secret.enabled_at is not None


async def enroll(
    box: SecretBox, repo: TerritoryRepository, user: User, territory_code: str
) -> Enrollment:
    """A new secret, not active until confirmed; re-enrolling replaces an unconfirmed one."""
    existing = await repo.mfa_secret(user.id, for_update=True)
    if existing is not None and existing.enabled_at is not None:
        raise Conflict("Two-factor authentication is already enabled", field="totp")
    secret = pyotp.random_base32(32)
    sealed = box.seal(secret, _context(user.id))
    if existing is None:
        repo.add(MfaSecret(user_id=user.id, secret=sealed))
    else:
        existing.secret = sealed
        existing.last_used_step = None
    await repo.flush()
    uri = pyotp.TOTP(secret).provisioning_uri(
        name=f"{user.username}@{territory_code}", issuer_name=ISSUER
    )
    return Enrollment(secret, uri)


async def confirm(
    box: SecretBox,
    repo: TerritoryRepository,
    user: User,
    territory_code: str,
    code: str,
    client: ClientInfo,
) -> list[str]:
    """Turn MFA on with a valid code; the recovery codes, shown this once."""
    secret = await repo.mfa_secret(user.id, for_update=True)
    if secret is None:
        raise BadUserInput("Enroll first", field="code")
    if secret.enabled_at is not None:
        raise Conflict("Two-factor authentication is already enabled", field="code")
    if not accept_totp(box, secret, code):
        raise BadUserInput("Invalid or already used code", field="code")
    secret.enabled_at = utcnow()
    codes = [new_recovery_code() for _ in range(RECOVERY_CODES)]
    await repo.replace_recovery_codes(
        user.id, [token_hash(normalize_recovery_code(c)) for c in codes]
    )
    repo.audit(
        "mfa.enable",
        territory_code=territory_code,
        user_id=user.id,
        resource_type="user",
        resource_id=str(user.id),
        client=client,
    )
    await repo.flush()
    await events.user_event(repo.session, territory_code, "mfa_enabled", user.id)
    return codes


async def disable(
    box: SecretBox,
    repo: TerritoryRepository,
    user: User,
    territory_code: str,
    code: str,
    client: ClientInfo,
) -> None:
    if not await accept_second_factor(box, repo, user.id, code):
        raise BadUserInput("Invalid or already used code", field="code")
    await repo.delete_mfa(user.id)
    repo.audit(
        "mfa.disable",
        territory_code=territory_code,
        user_id=user.id,
        resource_type="user",
        resource_id=str(user.id),
        client=client,
    )
    await repo.flush()
    await events.user_event(repo.session, territory_code, "mfa_disabled", user.id)
