"""Invitation tokens are found by their SHA-256 (`token_hash`), no longer by the token itself.

The `token` column keeps the token sealed with the data encryption keys from now on (its
creator reads it back); the auth service seals the tokens of existing rows at start-up, since
the key is not the migration's to know.

Revision ID: a0005
Revises: a0004
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from core.db.migration_env import quoted_target_schema, target_schema

revision: str = "a0005"
down_revision: str | Sequence[str] | None = "a0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    schema = target_schema()
    op.add_column("invitation_tokens", sa.Column("token_hash", sa.Text), schema=schema)
    op.execute(
        f"UPDATE {quoted_target_schema()}.invitation_tokens"
        " SET token_hash = encode(sha256(convert_to(token, 'UTF8')), 'hex')"
    )
    op.alter_column("invitation_tokens", "token_hash", nullable=False, schema=schema)
    op.create_index(
        "ix_invitation_tokens_token_hash",
        "invitation_tokens",
        ["token_hash"],
        unique=True,
        schema=schema,
    )


def downgrade() -> None:
    # Rows sealed since the upgrade keep their sealed token: a downgrade needs them opened first.
    schema = target_schema()
    op.drop_index("ix_invitation_tokens_token_hash", "invitation_tokens", schema=schema)
    op.drop_column("invitation_tokens", "token_hash", schema=schema)
