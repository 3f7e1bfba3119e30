"""Let account erasure clear the device details (IP address, user agent) of audit entries.

The audit log stays append-only for everything else: an UPDATE passes only when it changes
nothing but setting `ip_address` and `user_agent` to NULL; DELETE and TRUNCATE stay refused.

Revision ID: a0002
Revises: a0001
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from core.db.migration_env import quoted_target_schema

revision: str = "a0002"
down_revision: str | Sequence[str] | None = "a0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_REFUSE = """
    RAISE EXCEPTION 'audit_log is append-only: % refused', TG_OP
        USING ERRCODE = 'insufficient_privilege';
"""


def upgrade() -> None:
    qualified = quoted_target_schema()
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {qualified}.audit_log_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            IF TG_OP = 'UPDATE'
                AND NEW.ip_address IS NULL AND NEW.user_agent IS NULL
                AND NEW.id = OLD.id
                AND NEW.user_id IS NOT DISTINCT FROM OLD.user_id
                AND NEW.territory_code = OLD.territory_code
                AND NEW.action = OLD.action
                AND NEW.resource_type IS NOT DISTINCT FROM OLD.resource_type
                AND NEW.resource_id IS NOT DISTINCT FROM OLD.resource_id
                AND NEW.changes IS NOT DISTINCT FROM OLD.changes
                AND NEW.created_at = OLD.created_at
            THEN
                RETURN NEW;
            END IF;
            {_REFUSE}
        END
        $$
        """
    )


def downgrade() -> None:
    qualified = quoted_target_schema()
    op.execute(
        f"""
        CREATE OR REPLACE FUNCTION {qualified}.audit_log_append_only() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            {_REFUSE}
        END
        $$
        """
    )
