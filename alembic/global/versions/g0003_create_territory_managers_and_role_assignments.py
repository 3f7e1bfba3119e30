"""Create territory managers and platform role assignments.

Revision ID: g0003
Revises: g0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from core.db.migration_env import target_schema

revision: str = "g0003"
down_revision: str | Sequence[str] | None = "g0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _identity_fk(schema: str, *, ondelete: str) -> sa.ForeignKey:
    return sa.ForeignKey(f"{schema}.user_identities.id", ondelete=ondelete)


def upgrade() -> None:
    schema = target_schema()
    op.create_table(
        "territory_managers",
        sa.Column(
            "user_id",
            postgresql.UUID(as_uuid=True),
            _identity_fk(schema, ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column(
            "territory_code",
            sa.Text,
            sa.ForeignKey(f"{schema}.territories.code", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column(
            "granted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "granted_by", postgresql.UUID(as_uuid=True), _identity_fk(schema, ondelete="SET NULL")
        ),
        sa.PrimaryKeyConstraint("user_id", "territory_code", "role"),
        schema=schema,
    )
    op.create_index(
        "ix_territory_managers_territory", "territory_managers", ["territory_code"], schema=schema
    )
    op.create_table(
        "role_assignments",
        sa.Column(
            "user_id",
            postgresql.UUID(as_uuid=True),
            _identity_fk(schema, ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("role", sa.Text, nullable=False),
        sa.Column(
            "permissions",
            postgresql.ARRAY(sa.Text),
            nullable=False,
            server_default=sa.text("'{}'::text[]"),
        ),
        sa.Column(
            "granted_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "granted_by", postgresql.UUID(as_uuid=True), _identity_fk(schema, ondelete="SET NULL")
        ),
        sa.PrimaryKeyConstraint("user_id", "role"),
        schema=schema,
    )


def downgrade() -> None:
    schema = target_schema()
    op.drop_table("role_assignments", schema=schema)
    op.drop_table("territory_managers", schema=schema)
