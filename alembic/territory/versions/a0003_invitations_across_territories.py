"""Let an invitation's creator, and so a user's inviter, live in another territory.

Platform admins invite into any territory and territory admins into theirs, so the foreign keys
from `invitation_tokens.created_by_user_id` and `users.invited_by_user_id` to the local `users`
table go: they become federated references, a user id with `creator_territory` /
`invited_by_territory` naming the territory it lives in (NULL: this one).

Revision ID: a0003
Revises: ot001
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db.migration_env import quoted_target_schema, target_schema

revision: str = "a0003"
down_revision: str | Sequence[str] | None = "ot001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table: (user id column, the territory column added beside it)
_REFERENCES = {
    "invitation_tokens": ("created_by_user_id", "creator_territory"),
    "users": ("invited_by_user_id", "invited_by_territory"),
}


def upgrade() -> None:
    schema = target_schema()
    for table, (column, territory) in _REFERENCES.items():
        op.drop_constraint(f"{table}_{column}_fkey", table, type_="foreignkey", schema=schema)
        op.add_column(table, sa.Column(territory, sa.Text), schema=schema)


def downgrade() -> None:
    schema = target_schema()
    qualified = quoted_target_schema()
    for table, (column, territory) in _REFERENCES.items():
        # References into other territories (or to users erased since) cannot satisfy the
        # restored key; the key's own ON DELETE SET NULL is what they would have become.
        # Both names are ours: a quoted schema from the migration context and fixed columns.
        op.execute(
            sa.text(
                f"UPDATE {qualified}.{table} SET {column} = NULL "  # noqa: S608
                f"WHERE {territory} IS NOT NULL "
                f"OR {column} NOT IN (SELECT id FROM {qualified}.users)"
            )
        )
        op.drop_column(table, territory, schema=schema)
        op.create_foreign_key(
            f"{table}_{column}_fkey",
            table,
            "users",
            [column],
            ["id"],
            source_schema=schema,
            referent_schema=schema,
            ondelete="SET NULL",
        )
