"""Events written to the territory's outbox wake the outbox relay (NOTIFY naming the schema).

Revision ID: t0010
Revises: a0005
"""

from __future__ import annotations

from collections.abc import Sequence

from core.db.migration_env import quoted_target_schema
from core.db.migration_ops import create_outbox_notify, drop_outbox_notify

revision: str = "t0010"
down_revision: str | Sequence[str] | None = "a0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    create_outbox_notify(quoted_target_schema())


def downgrade() -> None:
    drop_outbox_notify(quoted_target_schema())
