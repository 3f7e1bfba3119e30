"""Create users: every personal field of an account lives here, in its territory.

Revision ID: t0002
Revises: t0001
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from core.db.migration_env import target_schema

revision: str = "t0002"
down_revision: str | Sequence[str] | None = "t0001"
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
        "users",
        _id(),
        sa.Column("username", sa.Text, nullable=False),
        sa.Column("email", sa.Text),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("full_name", sa.Text),
        sa.Column("display_name", sa.Text),
        sa.Column("avatar_url", sa.Text),
        sa.Column("bio", sa.Text),
        sa.Column("date_of_birth", sa.Date),
        sa.Column("phone", sa.Text),
        sa.Column(
            "profile_visibility", sa.Text, nullable=False, server_default=sa.text("'public'")
        ),
        sa.Column("email_notifications", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("push_notifications", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("is_verified", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("is_active", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column(
            "invited_by_user_id", UUID, sa.ForeignKey(f"{schema}.users.id", ondelete="SET NULL")
        ),
        # Points at invitation_tokens, which is created (with this key) by a later revision.
        sa.Column("invitation_by_token_id", UUID),
        _now("created_at"),
        _now("updated_at"),
        sa.Column("last_login_at", sa.DateTime(timezone=True)),
        sa.CheckConstraint("username ~ '^[A-Za-z0-9_]{3,50}$'", name="ck_users_username"),
        sa.CheckConstraint(
            "profile_visibility IN ('public', 'connections', 'private')",
            name="ck_users_profile_visibility",
        ),
        schema=schema,
    )
    # Case-insensitive uniqueness; an absent email (NULL) never collides.
    op.create_index(
        "uq_users_username_lower", "users", [sa.text("lower(username)")], unique=True, schema=schema
    )
    op.create_index(
        "uq_users_email_lower",
        "users",
        [sa.text("lower(email)")],
        unique=True,
        schema=schema,
        postgresql_where=sa.text("email IS NOT NULL"),
    )
    op.create_index("ix_users_invited_by", "users", ["invited_by_user_id"], schema=schema)


def downgrade() -> None:
    op.drop_table("users", schema=target_schema())
