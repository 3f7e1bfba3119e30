"""Create the auth subgraph's credentials: rotated refresh tokens, TOTP secrets, recovery codes,
password-reset and email-verification tokens.

Revision ID: a0001
Revises: u0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from core.db.migration_env import target_schema

revision: str = "a0001"
down_revision: str | Sequence[str] | None = "u0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

UUID = postgresql.UUID(as_uuid=True)


def _now(name: str) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now())


def _user(schema: str) -> sa.Column[object]:
    return sa.Column(
        "user_id", UUID, sa.ForeignKey(f"{schema}.users.id", ondelete="CASCADE"), nullable=False
    )


def upgrade() -> None:
    schema = target_schema()
    op.create_table(
        "rotated_refresh_tokens",
        sa.Column("token_hash", sa.Text, primary_key=True),
        sa.Column(
            "session_id",
            UUID,
            sa.ForeignKey(f"{schema}.sessions.id", ondelete="CASCADE"),
            nullable=False,
        ),
        sa.Column("rotated_at", sa.DateTime(timezone=True), nullable=False),
        # The pair handed out in exchange, readable only with the old token (grace window).
        sa.Column("successor_ciphertext", sa.LargeBinary),
        schema=schema,
    )
    op.create_index(
        "ix_rotated_refresh_tokens_session", "rotated_refresh_tokens", ["session_id"], schema=schema
    )
    op.create_table(
        "mfa_secrets",
        sa.Column(
            "user_id",
            UUID,
            sa.ForeignKey(f"{schema}.users.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column("secret", sa.Text, nullable=False),
        sa.Column("enabled_at", sa.DateTime(timezone=True)),
        sa.Column("last_used_step", sa.BigInteger),
        _now("created_at"),
        schema=schema,
    )
    op.create_table(
        "mfa_recovery_codes",
        sa.Column("id", UUID, primary_key=True, server_default=sa.text("gen_random_uuid()")),
        _user(schema),
        sa.Column("code_hash", sa.Text, nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        schema=schema,
    )
    op.create_index(
        "ix_mfa_recovery_codes_user", "mfa_recovery_codes", ["user_id", "code_hash"], schema=schema
    )
    op.create_table(
        "account_tokens",
        sa.Column("token_hash", sa.Text, primary_key=True),
        _user(schema),
        sa.Column("purpose", sa.Text, nullable=False),
        sa.Column("email", sa.Text),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("used_at", sa.DateTime(timezone=True)),
        _now("created_at"),
        sa.CheckConstraint(
            "purpose IN ('password_reset', 'email_verification')", name="ck_account_tokens_purpose"
        ),
        schema=schema,
    )
    op.create_index(
        "ix_account_tokens_user", "account_tokens", ["user_id", "purpose"], schema=schema
    )


def downgrade() -> None:
    schema = target_schema()
    op.drop_table("account_tokens", schema=schema)
    op.drop_table("mfa_recovery_codes", schema=schema)
    op.drop_table("mfa_secrets", schema=schema)
    op.drop_table("rotated_refresh_tokens", schema=schema)
