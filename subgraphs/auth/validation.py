"""The edge limits of every String and ID the auth subgraph accepts (see `core.input_checks`):
checked before any resolver runs, so no oversized, malformed or NUL-carrying value reaches SQL.

Lengths are the longest value that can ever be valid, from the rules the services apply
(usernames, passwords, names), the token formats they issue, and RFC limits (e-mail addresses,
language tags); anything longer is refused without a lookup.
"""

from __future__ import annotations

from core.db.territories import MAX_TERRITORY_CODE_LENGTH
from core.input_checks import TERRITORY_CODE, UUID_ID, InputRule
from subgraphs.auth.passwords import MAX_PASSWORD_LENGTH
from subgraphs.auth.service.registration import MAX_NAME_LENGTH

# Usernames are at most 50 characters; some room for the spaces people type around them.
USERNAME = InputRule(64)
PASSWORD = InputRule(MAX_PASSWORD_LENGTH)
EMAIL = InputRule(254)  # RFC 5321: the longest deliverable address
NAME = InputRule(MAX_NAME_LENGTH)
# `<territory>.<43-character secret>` (refresh, reset and verification tokens); `inv_` and 32 hex.
TERRITORY_TOKEN = InputRule(MAX_TERRITORY_CODE_LENGTH + 1 + 43)
INVITATION_TOKEN = InputRule(36)
# Six TOTP digits, or a recovery code (`xxxxx-xxxxx`), with room for spaces people type.
SECOND_FACTOR_CODE = InputRule(32)
ROLE = InputRule(64)
# IANA time zone names (the longest is 32), BCP 47 language tags (35), pod ids.
TIMEZONE = InputRule(64)
LANGUAGE_TAG = InputRule(35)
POD_ID = InputRule(63)

INPUT_RULES: dict[str, InputRule] = {
    "Query.user(id:)": UUID_ID,
    "Query.userByUsername(username:)": USERNAME,
    "Query.territory(code:)": TERRITORY_CODE,
    "Query.validateInvitation(token:)": INVITATION_TOKEN,
    "Query.validateInvitation(territoryCode:)": TERRITORY_CODE,
    "Query.validateInvitation(email:)": EMAIL,
    "Mutation.refreshToken(refreshToken:)": TERRITORY_TOKEN,
    "Mutation.logout(refreshToken:)": TERRITORY_TOKEN,
    "Mutation.revokeSession(id:)": UUID_ID,
    "Mutation.changePassword(currentPassword:)": PASSWORD,
    "Mutation.changePassword(newPassword:)": PASSWORD,
    "Mutation.requestPasswordReset(username:)": USERNAME,
    "Mutation.resetPassword(token:)": TERRITORY_TOKEN,
    "Mutation.resetPassword(newPassword:)": PASSWORD,
    "Mutation.verifyEmail(token:)": TERRITORY_TOKEN,
    "Mutation.confirmTotp(code:)": SECOND_FACTOR_CODE,
    "Mutation.disableTotp(code:)": SECOND_FACTOR_CODE,
    "Mutation.revokeInvitation(id:)": UUID_ID,
    "Mutation.revokeInvitation(territoryCode:)": TERRITORY_CODE,
    "Query.myInvitations(territoryCode:)": TERRITORY_CODE,
    "Mutation.grantTerritoryRole(userId:)": UUID_ID,
    "Mutation.grantTerritoryRole(territoryCode:)": TERRITORY_CODE,
    "Mutation.grantTerritoryRole(role:)": ROLE,
    "Mutation.deleteMyAccount(password:)": PASSWORD,
    "Subscription.territoryMemberJoined(territoryCode:)": TERRITORY_CODE,
    "RegisterInput.territoryCode": TERRITORY_CODE,
    "RegisterInput.invitationToken": INVITATION_TOKEN,
    "RegisterInput.username": USERNAME,
    "RegisterInput.password": PASSWORD,
    "RegisterInput.email": EMAIL,
    "RegisterInput.fullName": NAME,
    "RegisterInput.displayName": NAME,
    "LoginInput.username": USERNAME,
    "LoginInput.password": PASSWORD,
    "LoginInput.territoryCode": TERRITORY_CODE,
    "LoginInput.totpCode": SECOND_FACTOR_CODE,
    "CreateInvitationInput.email": EMAIL,
    "CreateInvitationInput.territoryCode": TERRITORY_CODE,
    "CreateTerritoryInput.code": TERRITORY_CODE,
    "CreateTerritoryInput.parentCode": TERRITORY_CODE,
    "CreateTerritoryInput.name": NAME,
    "CreateTerritoryInput.podId": POD_ID,
    "CreateTerritoryInput.timezone": TIMEZONE,
    "CreateTerritoryInput.locale": LANGUAGE_TAG,
    "CreateTerritoryInput.defaultLanguage": LANGUAGE_TAG,
}
