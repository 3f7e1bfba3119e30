"""Stored secrets sealed with the newest data encryption key: TOTP secrets and invitation
tokens written before sealing, or under a key being rotated out, are sealed anew. The auth
service runs this at start-up, so a rotation ends with a restart (docs/operations.md)."""

from __future__ import annotations

import logging

from core.security.secret_box import SealedValueError, SecretBox
from subgraphs.auth.repository import TerritoryRepository
from subgraphs.auth.runtime import AuthRuntime
from subgraphs.auth.service.mfa import totp_secret
from subgraphs.auth.tokens import invitation_token_in_clear, seal_invitation_token

log = logging.getLogger(__name__)


async def seal_territory_secrets(box: SecretBox, repo: TerritoryRepository) -> int:
    """Seal, in one territory, every stored secret not sealed with the newest key."""
    sealed = 0
    newest = box.sealed_prefix
    for row in await repo.mfa_secrets_not_sealed_with(newest):
        try:
            totp_secret(box, row)
        except SealedValueError:
            # Sealed by a key no longer configured (a rotation finished too early): this
            # user's TOTP cannot be read until that key is back.
            log.error("the TOTP secret of user %s is sealed by an unknown key", row.user_id)
            continue
        sealed += 1
    for invitation in await repo.invitations_not_sealed_with(newest):
        try:
            token = invitation_token_in_clear(box, invitation.id, invitation.token)
        except SealedValueError:
            log.error("the token of invitation %s is sealed by an unknown key", invitation.id)
            continue
        invitation.token = seal_invitation_token(box, invitation.id, token)
        sealed += 1
    await repo.flush()
    return sealed


async def seal_stored_secrets(rt: AuthRuntime) -> int:
    """`seal_territory_secrets` in every territory; how many values were sealed."""
    sealed = 0
    for territory in await rt.db.territories():
        async with rt.db.territory_session(territory.code) as session:
            sealed += await seal_territory_secrets(rt.secret_box, TerritoryRepository(session))
    return sealed
