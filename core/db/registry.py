"""The territory registry, `global.territories`: which pod and schema serve each territory.

It lives on the default pod only; `core.db.database.Database` caches it for every request.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    DateTime,
    ForeignKey,
    MetaData,
    Row,
    Table,
    Text,
    func,
    select,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.ext.asyncio import AsyncConnection

from core.db.territories import GLOBAL_SCHEMA, Territory, TerritoryType

registry_metadata = MetaData()

# NOTIFY channel of registry changes (a trigger on the table sends it; see registry_cache).
REGISTRY_CHANNEL = "unityplan_territories"

territories = Table(
    "territories",
    registry_metadata,
    Column("code", Text, primary_key=True),
    Column("name", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column(
        "parent_territory_code",
        Text,
        ForeignKey(f"{GLOBAL_SCHEMA}.territories.code", ondelete="RESTRICT"),
    ),
    Column("pod_id", Text, nullable=False),
    Column("timezone", Text),
    Column("locale", Text),
    Column("default_language", Text),
    Column("metadata", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("is_active", Boolean, nullable=False, server_default=text("true")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    CheckConstraint("type IN ('country', 'first_nation', 'community')", name="ck_territories_type"),
    CheckConstraint(
        "(type = 'community') = (parent_territory_code IS NOT NULL)",
        name="ck_territories_parent",
    ),
    schema=GLOBAL_SCHEMA,
)


def territory_from_row(row: Row[Any]) -> Territory:
    values = row._mapping
    return Territory(
        code=values["code"],
        name=values["name"],
        type=TerritoryType(values["type"]),
        parent_code=values["parent_territory_code"],
        pod_id=values["pod_id"],
        timezone=values["timezone"],
        locale=values["locale"],
        default_language=values["default_language"],
        metadata=dict(values["metadata"] or {}),
        is_active=values["is_active"],
        created_at=values["created_at"],
    )


async def load_registry(connection: AsyncConnection) -> dict[str, Territory]:
    """Every registered territory (active or not), by code."""
    result = await connection.execute(select(territories).order_by(territories.c.code))
    return {row.code: territory_from_row(row) for row in result}


async def find_territory(connection: AsyncConnection, code: str) -> Territory | None:
    result = await connection.execute(select(territories).where(territories.c.code == code))
    row = result.first()
    return territory_from_row(row) if row is not None else None
