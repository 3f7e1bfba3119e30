"""Territories and roles: platform admins create territories; platform or territory admins
grant territory roles. Roles live in `global` (platform: `role_assignments`, territory:
`territory_managers`); every grant is audited in the territory it concerns.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlalchemy.dialects.postgresql import insert

from core.db import Territory
from core.db.provisioning import create_territory as provision_territory
from core.errors import BadUserInput, Conflict, Forbidden, NotFound
from core.kit.repository import ClientInfo
from core.security import Principal
from subgraphs.auth import events
from subgraphs.auth.loaders import home_territories
from subgraphs.auth.models import RoleAssignment, TerritoryManager
from subgraphs.auth.repository import TerritoryRepository
from subgraphs.auth.runtime import AuthRuntime

PLATFORM_ADMIN = "platform_admin"
TERRITORY_ROLES = frozenset({"territory_admin", "moderator"})


@dataclass(frozen=True)
class NewTerritory:
    code: str
    name: str
    type: str
    parent_code: str | None = None
    pod_id: str | None = None
    timezone: str | None = None
    locale: str | None = None
    default_language: str | None = None


def forbidden_grant() -> Forbidden:
    return Forbidden("Only platform admins or this territory's admins grant its roles")


async def create_territory(
    rt: AuthRuntime, viewer: Principal, new: NewTerritory, client: ClientInfo
) -> Territory:
    """Register and provision a territory (the caller is a platform admin, checked at the edge)."""
    existing = {t.code for t in await rt.db.territories(include_inactive=True)}
    rt.db.invalidate_territories()
    if new.code in existing:
        raise Conflict("A territory with this code exists", field="code")
    created = await provision_territory(
        rt.settings,
        rt.db,
        code=new.code,
        name=new.name,
        type=new.type,
        parent_code=new.parent_code,
        pod_id=new.pod_id,
        timezone=new.timezone,
        locale=new.locale,
        default_language=new.default_language,
    )
    async with rt.db.territory_session(created.code) as session:
        repo = TerritoryRepository(session)
        repo.audit(
            "territory.create",
            territory_code=created.code,
            user_id=uuid.UUID(viewer.user_id),
            resource_type="territory",
            resource_id=created.code,
            changes={"type": created.type.value, "podId": created.pod_id},
            client=client,
        )
        await events.publish(
            session, created.code, "territory", "created", {"territoryCode": created.code}
        )
    return created


async def grant_territory_role(
    rt: AuthRuntime,
    viewer: Principal,
    user_id: uuid.UUID,
    territory_code: str,
    role: str,
    client: ClientInfo,
) -> None:
    """Grant `role` in `territory_code` (authorization is checked by the caller); idempotent."""
    if role not in TERRITORY_ROLES:
        raise BadUserInput(
            f"Territory roles are {', '.join(sorted(TERRITORY_ROLES))}", field="role"
        )
    await rt.db.territory(territory_code)
    if user_id not in await home_territories(rt, [user_id]):
        raise NotFound("User not found", field="userId")
    granted_by = uuid.UUID(viewer.user_id)
    async with rt.db.global_session() as session:
        await session.execute(
            insert(TerritoryManager)
            .values(
                user_id=user_id, territory_code=territory_code, role=role, granted_by=granted_by
            )
            .on_conflict_do_nothing()
        )
    async with rt.db.territory_session(territory_code) as session:
        repo = TerritoryRepository(session)
        repo.audit(
            "role.grant",
            territory_code=territory_code,
            user_id=granted_by,
            resource_type="user",
            resource_id=str(user_id),
            changes={"role": role},
            client=client,
        )
        await events.publish(
            session,
            territory_code,
            "role",
            "granted",
            {"userId": str(user_id), "role": role, "territoryCode": territory_code},
        )


async def grant_platform_admin(rt: AuthRuntime, user_id: uuid.UUID) -> None:
    """Make a user a platform admin (bootstrap and operators; no API grants this)."""
    async with rt.db.global_session() as session:
        await session.execute(
            insert(RoleAssignment)
            .values(user_id=user_id, role=PLATFORM_ADMIN)
            .on_conflict_do_nothing()
        )
