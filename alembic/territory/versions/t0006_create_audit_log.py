"""Create the append-only audit log (a trigger refuses UPDATE, DELETE and TRUNCATE).

Revision ID: t0006
Revises: t0005
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from core.db.migration_env import target_schema

revision: str = "t0006"
down_revision: str | Sequence[str] | None = "t0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = postgresql.UUID(as_uuid=True)


def _now(name: str) -> sa.Column[Any]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def upgrade() -> None:
    schema = target_schema()
    op.create_table(
        "audit_log",
        sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        # No foreign key: entries outlive the account they mention.
        sa.Column("user_id", UUID),
        sa.Column("territory_code", sa.Text, nullable=False),
        sa.Column("action", sa.Text, nullable=False),
        sa.Column("resource_type", sa.Text),
        sa.Column("resource_id", sa.Text),
        sa.Column("changes", postgresql.JSONB),
        sa.Column("ip_address", postgresql.INET),
        sa.Column("user_agent", sa.Text),
        _now("created_at"),
        schema=schema,
    )
    op.create_index(
        "ix_audit_log_user", "audit_log", ["user_id", sa.text("created_at DESC")], schema=schema
    )
    op.create_index("ix_audit_log_created_at", "audit_log", ["created_at"], schema=schema)
    # Per-role REVOKE cannot help when every service connects as the same role, so the table
    # defends itself. The schema name comes from schema_for(), quoted as an identifier.
    qualified = op.get_bind().dialect.identifier_preparer.quote_schema(schema)
    op.execute(
        f"""
        CREATE FUNCTION {qualified}.audit_log_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
                USING ERRCODE = 'insufficient_privilege';
        END
        $$
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER audit_log_append_only
        BEFORE UPDATE OR DELETE ON {qualified}.audit_log
        FOR EACH ROW EXECUTE FUNCTION {qualified}.audit_log_append_only()
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER audit_log_no_truncate
        BEFORE TRUNCATE ON {qualified}.audit_log
        FOR EACH STATEMENT EXECUTE FUNCTION {qualified}.audit_log_append_only()
        """
    )


def downgrade() -> None:
    schema = target_schema()
    qualified = op.get_bind().dialect.identifier_preparer.quote_schema(schema)
    op.drop_table("audit_log", schema=schema)
    op.execute(f"DROP FUNCTION {qualified}.audit_log_append_only()")
