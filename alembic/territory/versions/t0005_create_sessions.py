"""Create sessions (refresh tokens, stored hashed); IP and user agent are personal data.

Revision ID: t0005
Revises: t0004
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from core.db.migration_env import target_schema

revision: str = "t0005"
down_revision: str | Sequence[str] | None = "t0004"
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
        "sessions",
        _id(),
        sa.Column(
            "user_id",
            UUID,
            sa.ForeignKey(f"{schema}.users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        # SHA-256 hex of the refresh token; the token itself is never stored.
        sa.Column("token_hash", sa.Text, nullable=False, unique=True),
        sa.Column("ip_address", postgresql.INET),
        sa.Column("user_agent", sa.Text),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        _now("created_at"),
        sa.Column("last_used_at", sa.DateTime(timezone=True)),
        schema=schema,
    )
    op.create_index("ix_sessions_user", "sessions", ["user_id"], schema=schema)
    op.create_index("ix_sessions_expires_at", "sessions", ["expires_at"], schema=schema)


def downgrade() -> None:
    op.drop_table("sessions", schema=target_schema())
