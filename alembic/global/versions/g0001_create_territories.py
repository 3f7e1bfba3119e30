"""Create the territory registry.

Revision ID: g0001
Revises:
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from core.db.migration_env import target_schema

revision: str = "g0001"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    schema = target_schema()
    op.create_table(
        "territories",
        sa.Column("code", sa.Text, primary_key=True),
        sa.Column("name", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column(
            "parent_territory_code",
            sa.Text,
            sa.ForeignKey(f"{schema}.territories.code", ondelete="RESTRICT"),
        ),
        sa.Column("pod_id", sa.Text, nullable=False),
        sa.Column("timezone", sa.Text),
        sa.Column("locale", sa.Text),
        sa.Column("default_language", sa.Text),
        sa.Column(
            "metadata", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "type IN ('country', 'first_nation', 'community')", name="ck_territories_type"
        ),
        # Countries and First Nations never have a parent; a community always has one.
        sa.CheckConstraint(
            "(type = 'community') = (parent_territory_code IS NOT NULL)",
            name="ck_territories_parent",
        ),
        sa.CheckConstraint("code ~ '^[a-z][a-z0-9-]{1,52}$'", name="ck_territories_code"),
        schema=schema,
    )
    op.create_index(
        "ix_territories_parent", "territories", ["parent_territory_code"], schema=schema
    )
    op.create_index("ix_territories_pod", "territories", ["pod_id"], schema=schema)


def downgrade() -> None:
    op.drop_table("territories", schema=target_schema())
