"""Create invitation tokens and their uses.

Revision ID: t0004
Revises: t0003
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from core.db.migration_env import target_schema

revision: str = "t0004"
down_revision: str | Sequence[str] | None = "t0003"
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
        "invitation_tokens",
        _id(),
        sa.Column("token", sa.Text, nullable=False, unique=True),
        sa.Column("token_type", sa.Text, nullable=False),
        # NULL for tokens the platform itself issues (the bootstrap admin's invitation).
        sa.Column(
            "created_by_user_id", UUID, sa.ForeignKey(f"{schema}.users.id", ondelete="SET NULL")
        ),
        sa.Column("invited_email", sa.Text),
        sa.Column("invited_username", sa.Text),
        sa.Column(
            "community_id", UUID, sa.ForeignKey(f"{schema}.communities.id", ondelete="SET NULL")
        ),
        sa.Column("role", sa.Text),
        sa.Column("max_uses", sa.Integer, nullable=False),
        sa.Column("current_uses", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column(
            "metadata", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        _now("created_at"),
        _now("updated_at"),
        sa.CheckConstraint(
            "token_type IN ('single_use', 'group')", name="ck_invitation_tokens_type"
        ),
        # single_use: one use, for one email; group: 2..1000 uses, no email.
        sa.CheckConstraint(
            "(token_type = 'single_use' AND max_uses = 1 AND invited_email IS NOT NULL)"
            " OR (token_type = 'group' AND max_uses BETWEEN 2 AND 1000 AND invited_email IS NULL)",
            name="ck_invitation_tokens_uses_by_type",
        ),
        sa.CheckConstraint(
            "current_uses BETWEEN 0 AND max_uses", name="ck_invitation_tokens_current_uses"
        ),
        schema=schema,
    )
    op.create_index(
        "ix_invitation_tokens_creator",
        "invitation_tokens",
        ["created_by_user_id", sa.text("created_at DESC")],
        schema=schema,
    )
    op.create_foreign_key(
        "fk_users_invitation_by_token_id",
        "users",
        "invitation_tokens",
        ["invitation_by_token_id"],
        ["id"],
        source_schema=schema,
        referent_schema=schema,
        ondelete="SET NULL",
    )
    op.create_table(
        "invitation_uses",
        _id(),
        sa.Column(
            "token_id",
            UUID,
            sa.ForeignKey(f"{schema}.invitation_tokens.id", ondelete="CASCADE"),
            nullable=False,
        ),
        # Erasing an account erases its uses too: they hold its IP address and user agent.
        sa.Column(
            "used_by_user_id",
            UUID,
            sa.ForeignKey(f"{schema}.users.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("ip_address", postgresql.INET),
        sa.Column("user_agent", sa.Text),
        _now("used_at"),
        schema=schema,
    )
    op.create_index("ix_invitation_uses_token", "invitation_uses", ["token_id"], schema=schema)
    op.create_index(
        "ix_invitation_uses_user", "invitation_uses", ["used_by_user_id"], schema=schema
    )


def downgrade() -> None:
    schema = target_schema()
    op.drop_table("invitation_uses", schema=schema)
    op.drop_constraint(
        "fk_users_invitation_by_token_id", "users", type_="foreignkey", schema=schema
    )
    op.drop_table("invitation_tokens", schema=schema)
