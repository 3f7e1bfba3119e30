"""Create the transactional outbox and the consumers' processed-events record.

Revision ID: t0009
Revises: t0008
"""

from __future__ import annotations

from collections.abc import Sequence

from core.db.migration_env import target_schema
from core.db.migration_ops import create_outbox_tables, drop_outbox_tables

revision: str = "t0009"
down_revision: str | Sequence[str] | None = "t0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_outbox_tables(target_schema())


def downgrade() -> None:
    drop_outbox_tables(target_schema())
