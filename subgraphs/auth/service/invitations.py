"""Invitations: create, list (newest first), revoke (creator only), validate, consume.

Validation fails in the original's order: unknown, revoked, expired, used up, email mismatch.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum

from core.errors import BadUserInput, InvalidToken, NotFound
from core.kit.repository import ClientInfo
from core.security.secret_box import SecretBox
from subgraphs.auth import events
from subgraphs.auth.models import InvitationToken, InvitationUse
from subgraphs.auth.repository import TerritoryRepository
from subgraphs.auth.runtime import AuthRuntime, utcnow
from subgraphs.auth.tokens import new_invitation_token, seal_invitation_token, token_hash

# The audit `changes` key naming the territory a user invited into from another one.
INTO_TERRITORY = "intoTerritory"
SINGLE_USE = "single_use"
GROUP = "group"
MIN_GROUP_USES, MAX_GROUP_USES = 2, 1000
MIN_DAYS, MAX_DAYS = 1, 365


class InvalidReason(StrEnum):
    UNKNOWN = "UNKNOWN"
    REVOKED = "REVOKED"
    EXPIRED = "EXPIRED"
    USED_UP = "USED_UP"
    EMAIL_MISMATCH = "EMAIL_MISMATCH"


@dataclass(frozen=True)
class InvitationCheck:
    invitation: InvitationToken | None
    reason: InvalidReason | None

    @property
    def valid(self) -> bool:
        return self.reason is None


def check_invitation(
    invitation: InvitationToken | None, *, email: str | None, now: datetime
) -> InvitationCheck:
    """Why `invitation` cannot be used now (by `email`), in the original's order; or valid."""
    if invitation is None:
        return InvitationCheck(None, InvalidReason.UNKNOWN)
    reason: InvalidReason | None = None
    if not invitation.is_active and invitation.current_uses < invitation.max_uses:
        reason = InvalidReason.REVOKED
    elif invitation.expires_at <= now:
        reason = InvalidReason.EXPIRED
    elif invitation.current_uses >= invitation.max_uses:
        reason = InvalidReason.USED_UP
    elif invitation.token_type == SINGLE_USE and (
        email is None or (invitation.invited_email or "").lower() != email.strip().lower()
    ):
        reason = InvalidReason.EMAIL_MISMATCH
    return InvitationCheck(invitation, reason)


def invalid_token(reason: InvalidReason) -> InvalidToken:
    messages = {
        InvalidReason.UNKNOWN: "Invitation not found",
        InvalidReason.REVOKED: "Invitation has been revoked",
        InvalidReason.EXPIRED: "Invitation has expired",
        InvalidReason.USED_UP: "Invitation has no uses left",
        InvalidReason.EMAIL_MISMATCH: "Invitation was issued for another email address",
    }
    return InvalidToken(messages[reason], reason=reason.value, field="invitationToken")


async def consume_invitation(
    repo: TerritoryRepository,
    invitation: InvitationToken,
    *,
    user_id: uuid.UUID,
    client: ClientInfo,
    territory_code: str,
) -> None:
    """Count one use (the row is locked by the caller), record it, close it when used up."""
    invitation.current_uses += 1
    if invitation.current_uses >= invitation.max_uses:
        invitation.is_active = False
    repo.add(
        InvitationUse(
            id=uuid.uuid4(),
            token_id=invitation.id,
            used_by_user_id=user_id,
            ip_address=client.ip_address,
            user_agent=client.user_agent,
        )
    )
    await events.invitation_event(
        repo.session,
        territory_code,
        "used",
        invitation.id,
        invitation.created_by_user_id,
        usedBy=str(user_id),
        remainingUses=invitation.max_uses - invitation.current_uses,
    )


def invited_by(invitation: InvitationToken, territory_code: str) -> dict[str, str | None]:
    """What the audit entry of a registration records about who invited the new user, and
    from which territory (`territory_code`: the invitation's own)."""
    creator = invitation.created_by_user_id
    return {
        "invitationId": str(invitation.id),
        "invitedBy": str(creator) if creator is not None else None,
        "invitedByTerritory": (invitation.creator_territory or territory_code) if creator else None,
    }


def new_invitation(
    box: SecretBox,
    *,
    creator_id: uuid.UUID | None,
    creator_territory: str | None = None,
    token_type: str,
    email: str | None,
    max_uses: int | None,
    expires_in_days: int | None,
) -> InvitationToken:
    """A validated, not yet stored invitation (BAD_USER_INPUT names the field at fault); its
    creator lives in `creator_territory` (None: the territory the invitation is stored in)."""
    days = 30 if expires_in_days is None else expires_in_days
    if not MIN_DAYS <= days <= MAX_DAYS:
        raise BadUserInput(
            f"Invitations expire in {MIN_DAYS} to {MAX_DAYS} days", field="expiresInDays"
        )
    if token_type == SINGLE_USE:
        if not email or not email.strip():
            raise BadUserInput("A single-use invitation needs an email", field="email")
        if max_uses not in (None, 1):
            raise BadUserInput("A single-use invitation has exactly one use", field="maxUses")
        uses = 1
        email = validate_email(email)
    elif token_type == GROUP:
        if email:
            raise BadUserInput("A group invitation is not tied to an email", field="email")
        if max_uses is None or not MIN_GROUP_USES <= max_uses <= MAX_GROUP_USES:
            raise BadUserInput(
                f"A group invitation has {MIN_GROUP_USES} to {MAX_GROUP_USES} uses",
                field="maxUses",
            )
        uses = max_uses
        email = None
    else:
        raise BadUserInput("Unknown invitation type", field="type")
    invitation_id, token = uuid.uuid4(), new_invitation_token()
    return InvitationToken(
        id=invitation_id,
        token=seal_invitation_token(box, invitation_id, token),
        token_hash=token_hash(token),
        token_type=token_type,
        created_by_user_id=creator_id,
        creator_territory=creator_territory,
        invited_email=email,
        max_uses=uses,
        current_uses=0,
        expires_at=utcnow() + timedelta(days=days),
        is_active=True,
        created_at=utcnow(),
    )


def validate_email(email: str, field: str = "email") -> str:
    """A plausible address (one @, a dot in the domain, no spaces), trimmed; at most 254."""
    value = email.strip()
    local, at, domain = value.rpartition("@")
    if (
        not at
        or not local
        or "." not in domain.strip(".")
        or any(c.isspace() for c in value)
        or len(value) > 254
    ):
        raise BadUserInput("Invalid email address", field=field)
    return value


async def create_invitation(
    box: SecretBox,
    repo: TerritoryRepository,
    *,
    territory_code: str,
    creator_id: uuid.UUID,
    creator_territory: str,
    token_type: str,
    email: str | None,
    max_uses: int | None,
    expires_in_days: int | None,
    client: ClientInfo,
) -> InvitationToken:
    """Store an invitation into territory `territory_code` (`repo`'s) made by `creator_id` of
    territory `creator_territory`.

    An invitation into another territory is audited there without the creator's device
    details, which stay in the creator's home territory (see `audit_remote_invitation`).
    """
    remote = creator_territory != territory_code
    invitation = new_invitation(
        box,
        creator_id=creator_id,
        creator_territory=creator_territory if remote else None,
        token_type=token_type,
        email=email,
        max_uses=max_uses,
        expires_in_days=expires_in_days,
    )
    repo.add(invitation)
    changes: dict[str, object] = {"type": token_type, "maxUses": invitation.max_uses}
    if remote:
        changes["creatorTerritory"] = creator_territory
    repo.audit(
        "invitation.create",
        territory_code=territory_code,
        user_id=creator_id,
        resource_type="invitation",
        resource_id=str(invitation.id),
        changes=changes,
        client=None if remote else client,
    )
    await repo.flush()
    await events.invitation_event(
        repo.session,
        territory_code,
        "created",
        invitation.id,
        creator_id,
        type=token_type,
        maxUses=invitation.max_uses,
    )
    return invitation


def audit_remote_invitation(
    home: TerritoryRepository,
    invitation: InvitationToken,
    *,
    home_code: str,
    territory_code: str,
    client: ClientInfo,
) -> None:
    """The creator's home territory records that its user invited into `territory_code`."""
    home.audit(
        "invitation.create",
        territory_code=home_code,
        user_id=invitation.created_by_user_id,
        resource_type="invitation",
        resource_id=str(invitation.id),
        changes={
            "type": invitation.token_type,
            "maxUses": invitation.max_uses,
            INTO_TERRITORY: territory_code,
        },
        client=client,
    )


async def revoke_invitation(
    repo: TerritoryRepository,
    *,
    territory_code: str,
    invitation_id: uuid.UUID,
    caller_id: uuid.UUID,
    caller_territory: str,
    client: ClientInfo,
) -> None:
    """Deactivate; anyone but the creator is told it does not exist."""
    remote = caller_territory != territory_code
    invitation = await repo.invitation(invitation_id)
    if (
        invitation is None
        or invitation.created_by_user_id != caller_id
        or invitation.creator_territory != (caller_territory if remote else None)
    ):
        raise NotFound("Invitation not found", field="id")
    invitation.is_active = False
    repo.audit(
        "invitation.revoke",
        territory_code=territory_code,
        user_id=caller_id,
        resource_type="invitation",
        resource_id=str(invitation.id),
        changes={"creatorTerritory": caller_territory} if remote else None,
        client=None if remote else client,
    )
    await repo.flush()
    await events.invitation_event(repo.session, territory_code, "revoked", invitation.id, caller_id)


VALIDATIONS_PER_MINUTE = 30


async def validate(
    rt: AuthRuntime,
    *,
    token: str,
    territory_code: str,
    email: str | None,
    client: ClientInfo,
) -> InvitationCheck:
    """The public check of an invitation, limited per client IP (tokens are not for guessing)."""
    if client.limit_ip:
        await rt.guards.requests.enforce(
            f"validate-invitation:{client.limit_ip}", VALIDATIONS_PER_MINUTE, 60
        )
    try:
        async with rt.db.territory_session(territory_code) as session:
            found = await TerritoryRepository(session).invitation_by_token(token)
    except NotFound:
        return InvitationCheck(None, InvalidReason.UNKNOWN)
    return check_invitation(found, email=email, now=utcnow())
