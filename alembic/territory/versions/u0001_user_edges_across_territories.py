"""Let follows and blocks cross territories: an edge is stored in each endpoint's territory.

The other endpoint may live in another territory (and pod), so the foreign keys to the local
`users` table go; `remote_territory` names the other user's territory on such rows, and the
user subgraph erases both sides when a user is deleted.

Revision ID: u0001
Revises: t0009
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db.migration_env import target_schema

revision: str = "u0001"
down_revision: str | Sequence[str] | None = "t0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_FOREIGN_KEYS = {
    "user_connections": ("follower_id", "following_id"),
    "user_blocks": ("blocker_id", "blocked_id"),
}


def upgrade() -> None:
    schema = target_schema()
    for table, columns in _FOREIGN_KEYS.items():
        for column in columns:
            op.drop_constraint(f"{table}_{column}_fkey", table, type_="foreignkey", schema=schema)
        op.add_column(table, sa.Column("remote_territory", sa.Text), schema=schema)
    # Newest-first pages need the other endpoint as the tie-breaker of equal timestamps.
    op.create_index(
        "ix_user_connections_following_page",
        "user_connections",
        ["following_id", sa.text("created_at DESC"), sa.text("follower_id DESC")],
        schema=schema,
    )
    op.create_index(
        "ix_user_connections_follower_page",
        "user_connections",
        ["follower_id", sa.text("created_at DESC"), sa.text("following_id DESC")],
        schema=schema,
    )


def downgrade() -> None:
    schema = target_schema()
    op.drop_index("ix_user_connections_follower_page", "user_connections", schema=schema)
    op.drop_index("ix_user_connections_following_page", "user_connections", schema=schema)
    for table, columns in _FOREIGN_KEYS.items():
        # Cross-territory rows cannot satisfy the restored keys.
        # Both names are ours: a quoted schema from the migration context and a fixed table.
        delete = f"DELETE FROM {_quoted(schema)}.{table} WHERE remote_territory IS NOT NULL"  # noqa: S608
        op.execute(sa.text(delete))
        op.drop_column(table, "remote_territory", schema=schema)
        for column in columns:
            op.create_foreign_key(
                f"{table}_{column}_fkey",
                table,
                "users",
                [column],
                ["id"],
                source_schema=schema,
                referent_schema=schema,
                ondelete="CASCADE",
            )


def _quoted(schema: str) -> str:
    return op.get_bind().dialect.identifier_preparer.quote_schema(schema)
