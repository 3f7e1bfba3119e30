"""All SQL of the auth subgraph, built from one session (territory-bound, or global).

Territory tables resolve to the session's schema; `global.*` tables are reachable from a
territory session only on the default pod, so callers pass a global session for those otherwise.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select, update
from sqlalchemy.sql.elements import ColumnElement

from core.kit.repository import ClientInfo, Repository
from subgraphs.auth.models import (
    AccountToken,
    AuditEntry,
    InvitationToken,
    InvitationUse,
    MfaSecret,
    RecoveryCode,
    RevokedSession,
    RoleAssignment,
    RotatedRefreshToken,
    Session,
    TerritoryManager,
    User,
    UserIdentity,
)
from subgraphs.auth.tokens import token_hash


class TerritoryRepository(Repository):
    """Queries on one territory's schema."""

    # ------------------------------------------------------------ users

    async def user(self, user_id: uuid.UUID, *, for_update: bool = False) -> User | None:
        statement = select(User).where(User.id == user_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def users_with_mfa(self, user_ids: Iterable[uuid.UUID]) -> list[tuple[User, bool]]:
        """The users among `user_ids`, each with whether MFA is on; one query."""
        statement = (
            select(User, MfaSecret.enabled_at.is_not(None))
            .outerjoin(MfaSecret, MfaSecret.user_id == User.id)
            .where(User.id.in_(list(user_ids)))
        )
        rows = await self.session.execute(statement)
        return [(user, bool(enabled)) for user, enabled in rows]

    async def user_by_username(self, username: str) -> User | None:
        statement = select(User).where(func.lower(User.username) == username.lower())
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def email_taken(self, email: str) -> bool:
        statement = select(User.id).where(func.lower(User.email) == email.lower()).limit(1)
        return (await self.session.execute(statement)).first() is not None

    async def delete_user(self, user_id: uuid.UUID) -> None:
        await self.session.execute(delete(User).where(User.id == user_id))

    # ------------------------------------------------------------ invitations

    async def invitation_by_token(
        self, token: str, *, for_update: bool = False
    ) -> InvitationToken | None:
        statement = select(InvitationToken).where(InvitationToken.token_hash == token_hash(token))
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def invitation(self, invitation_id: uuid.UUID) -> InvitationToken | None:
        statement = select(InvitationToken).where(InvitationToken.id == invitation_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def invitations_created_by(
        self, user_id: uuid.UUID, *, home: str | None = None
    ) -> Sequence[InvitationToken]:
        """Invitations here made by `user_id`, who lives in territory `home` (None: here)."""
        statement = (
            select(InvitationToken)
            .where(InvitationToken.created_by_user_id == user_id, _creator_home(home))
            .order_by(InvitationToken.created_at.desc(), InvitationToken.id.desc())
        )
        return (await self.session.execute(statement)).scalars().all()

    async def invitation_uses(self, token_ids: Iterable[uuid.UUID]) -> Sequence[InvitationUse]:
        statement = (
            select(InvitationUse)
            .where(InvitationUse.token_id.in_(list(token_ids)))
            .order_by(InvitationUse.used_at.desc())
        )
        return (await self.session.execute(statement)).scalars().all()

    async def delete_invitations_created_by(
        self, user_id: uuid.UUID, *, home: str | None = None
    ) -> None:
        await self.session.execute(
            delete(InvitationToken).where(
                InvitationToken.created_by_user_id == user_id, _creator_home(home)
            )
        )

    async def forget_inviter(self, user_id: uuid.UUID, *, home: str | None = None) -> None:
        """Users invited by `user_id` (of territory `home`, None: here) no longer name them."""
        inviter_home = (
            User.invited_by_territory.is_(None)
            if home is None
            else User.invited_by_territory == home
        )
        await self.session.execute(
            update(User)
            .where(User.invited_by_user_id == user_id, inviter_home)
            .values(invited_by_user_id=None, invited_by_territory=None)
        )

    # ------------------------------------------------------------ sessions

    async def session_by_token_hash(self, hashed: str) -> Session | None:
        # FOR UPDATE serialises two refreshes of one token: the second re-reads the row after
        # the first commits, sees another hash and falls through to the rotated tokens.
        statement = select(Session).where(Session.token_hash == hashed).with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def rotated_token(self, hashed: str) -> RotatedRefreshToken | None:
        statement = select(RotatedRefreshToken).where(RotatedRefreshToken.token_hash == hashed)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def forget_successors(self, session_id: uuid.UUID, *, rotated_before: datetime) -> None:
        await self.session.execute(
            update(RotatedRefreshToken)
            .where(
                RotatedRefreshToken.session_id == session_id,
                RotatedRefreshToken.rotated_at < rotated_before,
                RotatedRefreshToken.successor_ciphertext.is_not(None),
            )
            .values(successor_ciphertext=None)
        )

    async def login_session(self, session_id: uuid.UUID) -> Session | None:
        statement = select(Session).where(Session.id == session_id)
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def sessions_of(self, user_id: uuid.UUID, *, now: datetime) -> Sequence[Session]:
        statement = (
            select(Session)
            .where(Session.user_id == user_id, Session.expires_at > now)
            .order_by(Session.created_at.desc())
        )
        return (await self.session.execute(statement)).scalars().all()

    async def end_sessions(
        self,
        user_id: uuid.UUID,
        *,
        only: uuid.UUID | None = None,
        keep: uuid.UUID | None = None,
    ) -> list[Session]:
        """Delete sessions of the user (one, or all but `keep`); the sessions that ended."""
        statement = delete(Session).where(Session.user_id == user_id)
        if only is not None:
            statement = statement.where(Session.id == only)
        if keep is not None:
            statement = statement.where(Session.id != keep)
        result = await self.session.execute(
            statement.returning(Session).execution_options(synchronize_session=False)
        )
        return list(result.scalars().all())

    async def purge_all_expired_sessions(self, now: datetime) -> int:
        result = await self.session.execute(
            delete(Session).where(Session.expires_at <= now).returning(Session.id)
        )
        # Revocations past their tokens' lifetime protect nothing any more.
        await self.session.execute(delete(RevokedSession).where(RevokedSession.expires_at <= now))
        return len(result.scalars().all())

    def record_revocations(
        self,
        session_ids: Iterable[uuid.UUID],
        user_id: uuid.UUID,
        *,
        now: datetime,
        expires_at: datetime,
    ) -> None:
        """The durable copy of the sessions' denylist entries (same transaction as their end)."""
        for session_id in session_ids:
            self.session.add(
                RevokedSession(
                    session_id=session_id, user_id=user_id, revoked_at=now, expires_at=expires_at
                )
            )

    async def live_revocations(self, now: datetime) -> list[tuple[uuid.UUID, datetime]]:
        """Revoked sessions whose access tokens may still verify: (session id, until)."""
        rows = await self.session.execute(
            select(RevokedSession.session_id, RevokedSession.expires_at).where(
                RevokedSession.expires_at > now
            )
        )
        return [(row.session_id, row.expires_at) for row in rows.all()]

    async def purge_expired_sessions(self, user_id: uuid.UUID, *, now: datetime) -> None:
        await self.session.execute(
            delete(Session).where(Session.user_id == user_id, Session.expires_at <= now)
        )

    # ------------------------------------------------------------ MFA

    async def mfa_secret(self, user_id: uuid.UUID, *, for_update: bool = False) -> MfaSecret | None:
        statement = select(MfaSecret).where(MfaSecret.user_id == user_id)
        if for_update:
            statement = statement.with_for_update()
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def mfa_secrets_not_sealed_with(self, prefix: str) -> Sequence[MfaSecret]:
        """The TOTP secrets whose stored value does not start with `prefix`, locked."""
        statement = (
            select(MfaSecret)
            .where(MfaSecret.secret.not_like(prefix + "%"))
            .order_by(MfaSecret.user_id)
            .with_for_update()
        )
        return (await self.session.execute(statement)).scalars().all()

    async def invitations_not_sealed_with(self, prefix: str) -> Sequence[InvitationToken]:
        """The invitations whose stored token does not start with `prefix`, locked."""
        statement = (
            select(InvitationToken)
            .where(InvitationToken.token.not_like(prefix + "%"))
            .order_by(InvitationToken.id)
            .with_for_update()
        )
        return (await self.session.execute(statement)).scalars().all()

    async def delete_mfa(self, user_id: uuid.UUID) -> None:
        await self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        await self.session.execute(delete(MfaSecret).where(MfaSecret.user_id == user_id))

    async def unused_recovery_code(self, user_id: uuid.UUID, code_hash: str) -> RecoveryCode | None:
        statement = (
            select(RecoveryCode)
            .where(
                RecoveryCode.user_id == user_id,
                RecoveryCode.code_hash == code_hash,
                RecoveryCode.used_at.is_(None),
            )
            .with_for_update()
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def replace_recovery_codes(self, user_id: uuid.UUID, code_hashes: list[str]) -> None:
        await self.session.execute(delete(RecoveryCode).where(RecoveryCode.user_id == user_id))
        self.add(
            *(RecoveryCode(id=uuid.uuid4(), user_id=user_id, code_hash=h) for h in code_hashes)
        )

    # ------------------------------------------------------------ account tokens

    async def account_token(self, hashed: str, purpose: str) -> AccountToken | None:
        statement = (
            select(AccountToken)
            .where(AccountToken.token_hash == hashed, AccountToken.purpose == purpose)
            .with_for_update()
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def retire_account_tokens(self, user_id: uuid.UUID, purpose: str, now: datetime) -> None:
        """Mark every unused token of that purpose used: only the newest one may work."""
        await self.session.execute(
            update(AccountToken)
            .where(
                AccountToken.user_id == user_id,
                AccountToken.purpose == purpose,
                AccountToken.used_at.is_(None),
            )
            .values(used_at=now)
        )

    # ------------------------------------------------------------ audit

    def audit(
        self,
        action: str,
        *,
        territory_code: str,
        user_id: uuid.UUID | None,
        resource_type: str | None = None,
        resource_id: str | None = None,
        changes: dict[str, Any] | None = None,
        client: ClientInfo | None = None,
    ) -> None:
        """An audit entry of `action`, with the device details of `client` (None: kept out, as
        in a territory that is not the actor's home)."""
        self.add(
            AuditEntry(
                id=uuid.uuid4(),
                user_id=user_id,
                territory_code=territory_code,
                action=action,
                resource_type=resource_type,
                resource_id=resource_id,
                changes=changes,
                ip_address=client.ip_address if client is not None else None,
                user_agent=client.user_agent if client is not None else None,
            )
        )

    async def territories_invited_into(self, user_id: uuid.UUID, key: str) -> list[str]:
        """The other territories `user_id` made invitations into, by their home audit entries
        (`key` of `changes` names the territory)."""
        into = AuditEntry.changes[key].astext
        statement = (
            select(into)
            .distinct()
            .where(
                AuditEntry.user_id == user_id,
                AuditEntry.action == "invitation.create",
                into.is_not(None),
            )
        )
        return [str(code) for code in (await self.session.execute(statement)).scalars()]

    async def erase_audit_device_details(self, user_id: uuid.UUID) -> None:
        """Clear IP addresses and user agents of the user's entries (the only change the
        append-only audit log accepts)."""
        await self.session.execute(
            update(AuditEntry)
            .where(AuditEntry.user_id == user_id)
            .values(ip_address=None, user_agent=None)
        )

    async def audit_entries_about(self, user_id: uuid.UUID) -> Sequence[AuditEntry]:
        statement = (
            select(AuditEntry)
            .where(AuditEntry.user_id == user_id)
            .order_by(AuditEntry.created_at.desc())
        )
        return (await self.session.execute(statement)).scalars().all()


class GlobalRepository(Repository):
    """Queries on the `global` schema: identities and roles."""

    async def identity_by_username(self, username: str) -> UserIdentity | None:
        statement = select(UserIdentity).where(
            func.lower(UserIdentity.username) == username.lower()
        )
        return (await self.session.execute(statement)).scalar_one_or_none()

    async def username_taken(self, username: str) -> bool:
        return await self.identity_by_username(username) is not None

    async def identities(self, user_ids: Iterable[uuid.UUID]) -> Sequence[UserIdentity]:
        statement = select(UserIdentity).where(UserIdentity.id.in_(list(user_ids)))
        return (await self.session.execute(statement)).scalars().all()

    async def delete_identity(self, user_id: uuid.UUID) -> None:
        await self.session.execute(delete(UserIdentity).where(UserIdentity.id == user_id))

    async def platform_roles(self, user_id: uuid.UUID) -> list[str]:
        statement = select(RoleAssignment.role).where(RoleAssignment.user_id == user_id)
        return sorted((await self.session.execute(statement)).scalars().all())

    async def territory_roles(self, user_id: uuid.UUID) -> list[tuple[str, str]]:
        """(territory code, role) pairs of the user."""
        statement = select(TerritoryManager.territory_code, TerritoryManager.role).where(
            TerritoryManager.user_id == user_id
        )
        return sorted((code, role) for code, role in (await self.session.execute(statement)))

    async def territory_roles_of(
        self, user_ids: Iterable[uuid.UUID]
    ) -> dict[uuid.UUID, set[tuple[str, str]]]:
        """(territory code, role) pairs of each of the users, in one query."""
        statement = select(
            TerritoryManager.user_id, TerritoryManager.territory_code, TerritoryManager.role
        ).where(TerritoryManager.user_id.in_(list(user_ids)))
        found: dict[uuid.UUID, set[tuple[str, str]]] = {}
        for user_id, code, role in await self.session.execute(statement):
            found.setdefault(user_id, set()).add((code, role))
        return found

    async def platform_role_holders(
        self, user_ids: Iterable[uuid.UUID], role: str
    ) -> set[uuid.UUID]:
        statement = select(RoleAssignment.user_id).where(
            RoleAssignment.user_id.in_(list(user_ids)), RoleAssignment.role == role
        )
        return set((await self.session.execute(statement)).scalars().all())

    async def has_platform_role(self, user_id: uuid.UUID, role: str) -> bool:
        statement = select(RoleAssignment.user_id).where(
            RoleAssignment.user_id == user_id, RoleAssignment.role == role
        )
        return (await self.session.execute(statement)).first() is not None

    async def has_territory_role(self, user_id: uuid.UUID, code: str, role: str) -> bool:
        statement = select(TerritoryManager.user_id).where(
            TerritoryManager.user_id == user_id,
            TerritoryManager.territory_code == code,
            TerritoryManager.role == role,
        )
        return (await self.session.execute(statement)).first() is not None


def _creator_home(home: str | None) -> ColumnElement[bool]:
    """Invitations whose creator lives in territory `home` (None: the invitation's own)."""
    if home is None:
        return InvitationToken.creator_territory.is_(None)
    return InvitationToken.creator_territory == home
