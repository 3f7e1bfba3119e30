"""Data portability: everything the auth subgraph holds about the signed-in user, as JSON."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.errors import NotFound
from core.security import Principal
from subgraphs.auth.repository import GlobalRepository, TerritoryRepository
from subgraphs.auth.runtime import AuthRuntime, utcnow


@dataclass(frozen=True)
class AccountExport:
    generated_at: datetime
    account: dict[str, Any]


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def export_account(rt: AuthRuntime, viewer: Principal) -> AccountExport:
    user_id = uuid.UUID(viewer.user_id)
    now = utcnow()
    async with rt.db.territory_session(viewer.territory_code) as session:
        repo = TerritoryRepository(session)
        found = await repo.users_with_mfa([user_id])
        if not found:
            raise NotFound("Account not found")
        user, mfa_enabled = found[0]
        sessions = await repo.sessions_of(user_id, now=now)
        invitations = await repo.invitations_created_by(user_id)
        audit = await repo.audit_entries_about(user_id)
    async with rt.db.global_session() as session:
        global_repo = GlobalRepository(session)
        identities = await global_repo.identities([user_id])
        platform_roles = await global_repo.platform_roles(user_id)
        territory_roles = await global_repo.territory_roles(user_id)
    identity = identities[0] if identities else None
    account = {
        "account": {
            "id": str(user.id),
            "username": user.username,
            "email": user.email,
            "fullName": user.full_name,
            "displayName": user.display_name,
            "avatarUrl": user.avatar_url,
            "isVerified": user.is_verified,
            "isActive": user.is_active,
            "mfaEnabled": mfa_enabled,
            "createdAt": _time(user.created_at),
            "updatedAt": _time(user.updated_at),
            "lastLoginAt": _time(user.last_login_at),
            "invitedByUserId": str(user.invited_by_user_id) if user.invited_by_user_id else None,
            "invitedByTerritory": (
                (user.invited_by_territory or viewer.territory_code)
                if user.invited_by_user_id
                else None
            ),
        },
        "identity": {
            "id": str(identity.id),
            "username": identity.username,
            "territoryCode": identity.territory_code,
            "publicKeyHash": identity.public_key_hash,
            "createdAt": _time(identity.created_at),
        }
        if identity
        else None,
        "sessions": [
            {
                "id": str(s.id),
                "createdAt": _time(s.created_at),
                "lastUsedAt": _time(s.last_used_at),
                "expiresAt": _time(s.expires_at),
                "ipAddress": str(s.ip_address) if s.ip_address else None,
                "userAgent": s.user_agent,
            }
            for s in sessions
        ],
        "invitations": [
            {
                "id": str(i.id),
                "type": i.token_type,
                "email": i.invited_email,
                "maxUses": i.max_uses,
                "currentUses": i.current_uses,
                "expiresAt": _time(i.expires_at),
                "isActive": i.is_active,
                "createdAt": _time(i.created_at),
            }
            for i in invitations
        ],
        "roles": {
            "platform": platform_roles,
            "territory": [{"territoryCode": c, "role": r} for c, r in territory_roles],
        },
        "auditEntries": [
            {
                "action": a.action,
                "resourceType": a.resource_type,
                "resourceId": a.resource_id,
                "changes": a.changes,
                "ipAddress": str(a.ip_address) if a.ip_address else None,
                "userAgent": a.user_agent,
                "createdAt": _time(a.created_at),
            }
            for a in audit
        ],
    }
    return AccountExport(generated_at=now, account=account)
