"""Create follows (user_connections) and blocks between the territory's users.

Revision ID: t0008
Revises: t0007
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from core.db.migration_env import target_schema

revision: str = "t0008"
down_revision: str | Sequence[str] | None = "t0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = postgresql.UUID(as_uuid=True)


def _now(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _user_fk(schema: str, column: str) -> sa.Column[Any]:
    return sa.Column(
        column,
        UUID,
        sa.ForeignKey(f"{schema}.users.id", ondelete="CASCADE"),
        nullable=False,
    )


def upgrade() -> None:
    schema = target_schema()
    op.create_table(
        "user_connections",
        _user_fk(schema, "follower_id"),
        _user_fk(schema, "following_id"),
        _now("created_at"),
        sa.PrimaryKeyConstraint("follower_id", "following_id"),
        sa.CheckConstraint("follower_id <> following_id", name="ck_user_connections_not_self"),
        schema=schema,
    )
    # Followers of a user, newest first (the primary key already serves "following").
    op.create_index(
        "ix_user_connections_following",
        "user_connections",
        ["following_id", sa.text("created_at DESC")],
        schema=schema,
    )
    op.create_index(
        "ix_user_connections_follower_created",
        "user_connections",
        ["follower_id", sa.text("created_at DESC")],
        schema=schema,
    )
    op.create_table(
        "user_blocks",
        _user_fk(schema, "blocker_id"),
        _user_fk(schema, "blocked_id"),
        sa.Column("reason", sa.Text),
        _now("created_at"),
        sa.PrimaryKeyConstraint("blocker_id", "blocked_id"),
        sa.CheckConstraint("blocker_id <> blocked_id", name="ck_user_blocks_not_self"),
        schema=schema,
    )
    op.create_index("ix_user_blocks_blocked", "user_blocks", ["blocked_id"], schema=schema)


def downgrade() -> None:
    schema = target_schema()
    op.drop_table("user_blocks", schema=schema)
    op.drop_table("user_connections", schema=schema)
