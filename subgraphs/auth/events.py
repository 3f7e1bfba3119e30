"""Events the auth subgraph publishes, written to the outbox in the transaction of the change.

Territory events (`territory.<code>.<domain>.<action>`) carry the user id and territory only;
the global `user.registered` and `user.deleted` let every service react without personal data.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from core.events import enqueue, global_subject, territory_subject
from subgraphs.auth.models import Session

SOURCE = "unityplan/auth"


async def publish(
    session: AsyncSession,
    territory_code: str,
    domain: str,
    action: str,
    data: dict[str, Any],
    *,
    audience: Sequence[uuid.UUID] = (),
) -> None:
    """One event on `territory.<code>.<domain>.<action>`, of type `unityplan.<domain>.<action>`;
    `audience`, the users it concerns, also get it live on `rt.user.<id>.<domain>.<action>`."""
    await enqueue(
        session,
        subject=territory_subject(territory_code, domain, action),
        type=f"unityplan.{domain}.{action}",
        source=SOURCE,
        data=data,
        territory=territory_code,
        audience=audience,
    )


async def publish_global(
    session: AsyncSession, domain: str, action: str, data: dict[str, Any]
) -> None:
    """One platform-wide event, `global.<domain>.<action>`, written to the global outbox."""
    await enqueue(
        session,
        subject=global_subject(domain, action),
        type=f"unityplan.{domain}.{action}",
        source=SOURCE,
        data=data,
    )


def user_data(user_id: uuid.UUID, territory_code: str, **extra: Any) -> dict[str, Any]:
    return {"userId": str(user_id), "territoryCode": territory_code, **extra}


async def user_event(
    session: AsyncSession, territory_code: str, action: str, user_id: uuid.UUID, **extra: Any
) -> None:
    await publish(
        session, territory_code, "user", action, user_data(user_id, territory_code, **extra)
    )


def _time(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def session_revoked(
    session: AsyncSession,
    territory_code: str,
    user_id: uuid.UUID,
    ended: Sequence[Session],
    reason: str,
) -> None:
    """`territory.<code>.session.revoked`: feeds the `sessionRevoked` subscription (the event
    stays in the territory's stream, so the device details may travel with it)."""
    for row in ended:
        await publish(
            session,
            territory_code,
            "session",
            "revoked",
            user_data(
                user_id,
                territory_code,
                sessionId=str(row.id),
                reason=reason,
                createdAt=_time(row.created_at),
                lastUsedAt=_time(row.last_used_at),
                expiresAt=_time(row.expires_at),
                userAgent=row.user_agent,
                ipAddress=str(row.ip_address) if row.ip_address is not None else None,
            ),
            audience=[user_id],
        )


async def invitation_event(
    session: AsyncSession,
    territory_code: str,
    action: str,
    invitation_id: uuid.UUID,
    creator_id: uuid.UUID | None,
    **extra: Any,
) -> None:
    await publish(
        session,
        territory_code,
        "invitation",
        action,
        {
            "invitationId": str(invitation_id),
            "creatorId": str(creator_id) if creator_id else None,
            "territoryCode": territory_code,
            **extra,
        },
    )
