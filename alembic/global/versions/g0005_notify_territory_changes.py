"""Notify listeners of every change to the territory registry, so caches drop at once.

Revision ID: g0005
Revises: g0004
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from core.db.migration_env import target_schema

revision: str = "g0005"
down_revision: str | Sequence[str] | None = "g0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# core.db.registry.REGISTRY_CHANNEL; spelled out so this revision never changes after release.
CHANNEL = "unityplan_territories"


def upgrade() -> None:
    schema = op.get_bind().dialect.identifier_preparer.quote_schema(target_schema())
    # Statement-level and AFTER: one notification per change, delivered when it commits.
    op.execute(
        f"""
        CREATE FUNCTION {schema}.notify_territory_change() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{CHANNEL}', TG_OP);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER territories_notify_change
        AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON {schema}.territories
        FOR EACH STATEMENT EXECUTE FUNCTION {schema}.notify_territory_change()
        """
    )


def downgrade() -> None:
    schema = op.get_bind().dialect.identifier_preparer.quote_schema(target_schema())
    op.execute(f"DROP TRIGGER territories_notify_change ON {schema}.territories")
    op.execute(f"DROP FUNCTION {schema}.notify_territory_change()")
