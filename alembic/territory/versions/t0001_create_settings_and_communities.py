"""Create the territory's settings and communities.

Revision ID: t0001
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from core.db.migration_env import target_schema

revision: str = "t0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = postgresql.UUID(as_uuid=True)


def _now(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _id() -> sa.Column[Any]:
    return sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()"))


def upgrade() -> None:
    schema = target_schema()
    op.create_table(
        "settings",
        sa.Column("key", sa.Text, primary_key=True),
        sa.Column("value", postgresql.JSONB, nullable=False),
        _now("updated_at"),
        schema=schema,
    )
    op.create_table(
        "communities",
        _id(),
        sa.Column("code", sa.Text, nullable=False, unique=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column(
            "parent_code",
            sa.Text,
            sa.ForeignKey(f"{schema}.communities.code", ondelete="RESTRICT"),
        ),
        sa.Column("description", sa.Text),
        sa.Column(
            "metadata", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        _now("created_at"),
        _now("updated_at"),
        schema=schema,
    )
    op.create_index("ix_communities_parent", "communities", ["parent_code"], schema=schema)


def downgrade() -> None:
    schema = target_schema()
    op.drop_table("communities", schema=schema)
    op.drop_table("settings", schema=schema)
