"""Create community memberships.

Revision ID: t0003
Revises: t0002
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from core.db.migration_env import target_schema

revision: str = "t0003"
down_revision: str | Sequence[str] | None = "t0002"
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
        "community_members",
        sa.Column(
            "community_id",
            UUID,
            sa.ForeignKey(f"{schema}.communities.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "user_id",
            UUID,
            sa.ForeignKey(f"{schema}.users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("role", sa.Text, nullable=False, server_default=sa.text("'member'")),
        _now("joined_at"),
        sa.PrimaryKeyConstraint("community_id", "user_id"),
        schema=schema,
    )
    op.create_index("ix_community_members_user", "community_members", ["user_id"], schema=schema)


def downgrade() -> None:
    op.drop_table("community_members", schema=target_schema())
