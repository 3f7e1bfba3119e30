"""Events written to the global outbox wake the outbox relay (NOTIFY naming the schema).

Revision ID: g0006
Revises: og001
"""

from __future__ import annotations

from collections.abc import Sequence

from core.db.migration_env import quoted_target_schema
from core.db.migration_ops import create_outbox_notify, drop_outbox_notify

revision: str = "g0006"
down_revision: str | Sequence[str] | None = "og001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_outbox_notify(quoted_target_schema())


def downgrade() -> None:
    drop_outbox_notify(quoted_target_schema())
