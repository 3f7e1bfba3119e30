"""Create user identities: global usernames and identity hashes, no personal data.

Revision ID: g0002
Revises: g0001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from core.db.migration_env import target_schema

revision: str = "g0002"
down_revision: str | Sequence[str] | None = "g0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    schema = target_schema()
    op.create_table(
        "user_identities",
        sa.Column(
            "id",
            postgresql.UUID(as_uuid=True),
            primary_key=True,
            server_default=sa.text("gen_random_uuid()"),
        ),
        sa.Column("username", sa.Text, nullable=False),
        # SHA-256 hex of the identity key; the `sub` of access tokens.
        sa.Column("public_key_hash", sa.Text, nullable=False, unique=True),
        sa.Column(
            "territory_code",
            sa.Text,
            sa.ForeignKey(f"{schema}.territories.code", ondelete="RESTRICT"),
            nullable=False,
        ),
        # The user's id in the home territory's `users` table (which may be on another pod).
        sa.Column("territory_user_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.CheckConstraint(
            "public_key_hash ~ '^[0-9a-f]{64}$'", name="ck_user_identities_public_key_hash"
        ),
        sa.UniqueConstraint(
            "territory_code", "territory_user_id", name="uq_user_identities_territory_user"
        ),
        schema=schema,
    )
    # Usernames are globally unique regardless of case.
    op.create_index(
        "uq_user_identities_username_lower",
        "user_identities",
        [sa.text("lower(username)")],
        unique=True,
        schema=schema,
    )


def downgrade() -> None:
    op.drop_table("user_identities", schema=target_schema())
