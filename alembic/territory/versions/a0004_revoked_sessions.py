"""Keep ended sessions' revocations durably, beside the sessions, until their access tokens
have expired: the Redis denylist every service checks is refilled from here after Redis lost it.

Revision ID: a0004
Revises: a0003
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

from core.db.migration_env import target_schema

revision: str = "a0004"
down_revision: str | Sequence[str] | None = "a0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    schema = target_schema()
    op.create_table(
        "revoked_sessions",
        sa.Column("session_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=False),
        # Past this, no access token of the session verifies any more: the row may go.
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        schema=schema,
    )
    op.create_index(
        "revoked_sessions_expires_at", "revoked_sessions", ["expires_at"], schema=schema
    )


def downgrade() -> None:
    op.drop_table("revoked_sessions", schema=target_schema())
