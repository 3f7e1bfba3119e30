"""Create user profiles (about, lists, links, theme, privacy settings).

Revision ID: t0007
Revises: t0006
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from core.db.migration_env import target_schema

revision: str = "t0007"
down_revision: str | Sequence[str] | None = "t0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = postgresql.UUID(as_uuid=True)


def _now(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    schema = target_schema()
    empty_list = sa.text("'{}'::text[]")
    op.create_table(
        "user_profiles",
        sa.Column(
            "user_id",
            UUID,
            sa.ForeignKey(f"{schema}.users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("about", sa.Text),
        sa.Column(
            "interests", postgresql.ARRAY(sa.Text), nullable=False, server_default=empty_list
        ),
        sa.Column("skills", postgresql.ARRAY(sa.Text), nullable=False, server_default=empty_list),
        sa.Column(
            "languages", postgresql.ARRAY(sa.Text), nullable=False, server_default=empty_list
        ),
        sa.Column("location", sa.Text),
        sa.Column("website_url", sa.Text),
        sa.Column("github_url", sa.Text),
        sa.Column("linkedin_url", sa.Text),
        sa.Column("twitter_handle", sa.Text),
        sa.Column("theme", sa.Text, nullable=False, server_default=sa.text("'auto'")),
        sa.Column("visibility", sa.Text, nullable=False, server_default=sa.text("'public'")),
        sa.Column("show_email", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("show_real_name", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column(
            "allow_messages_from", sa.Text, nullable=False, server_default=sa.text("'everyone'")
        ),
        # Stored avatar sizes and their content type; the images live outside the database.
        sa.Column("avatar", postgresql.JSONB),
        sa.Column(
            "metadata", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        _now("created_at"),
        _now("updated_at"),
        sa.CheckConstraint("char_length(about) <= 2000", name="ck_user_profiles_about"),
        sa.CheckConstraint("char_length(location) <= 255", name="ck_user_profiles_location"),
        sa.CheckConstraint(
            "char_length(twitter_handle) <= 100", name="ck_user_profiles_twitter_handle"
        ),
        sa.CheckConstraint("theme IN ('light', 'dark', 'auto')", name="ck_user_profiles_theme"),
        sa.CheckConstraint(
            "visibility IN ('public', 'connections', 'private')",
            name="ck_user_profiles_visibility",
        ),
        sa.CheckConstraint(
            "allow_messages_from IN ('everyone', 'connections', 'nobody')",
            name="ck_user_profiles_allow_messages_from",
        ),
        schema=schema,
    )


def downgrade() -> None:
    op.drop_table("user_profiles", schema=target_schema())
