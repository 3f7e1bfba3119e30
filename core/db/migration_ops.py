"""Migration steps that both trees run: the outbox and processed-events tables of a schema.

The shape is the one revisions g0004 (global) and t0009 (territory) introduced; a later change
to these tables is a new revision in each tree, never an edit here.
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql


def create_outbox_tables(schema: str) -> None:
    """The transactional outbox and the consumers' processed-events record in `schema`."""
    # The same columns as core/db/tables.py (a test compares them).
    op.create_table(
        "outbox",
        sa.Column("id", postgresql.UUID(as_uuid=True), primary_key=True),
        sa.Column("subject", sa.Text, nullable=False),
        sa.Column("type", sa.Text, nullable=False),
        sa.Column("source", sa.Text, nullable=False),
        sa.Column("payload", postgresql.JSONB, nullable=False),
        sa.Column(
            "headers", postgresql.JSONB, nullable=False, server_default=sa.text("'{}'::jsonb")
        ),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "available_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.Column("attempts", sa.Integer, nullable=False, server_default=sa.text("0")),
        sa.Column("last_error", sa.Text),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        schema=schema,
    )
    op.create_index(
        "ix_outbox_pending",
        "outbox",
        ["available_at"],
        schema=schema,
        postgresql_where=sa.text("sent_at IS NULL"),
    )
    op.create_table(
        "processed_events",
        sa.Column("consumer", sa.Text, nullable=False),
        sa.Column("event_id", postgresql.UUID(as_uuid=True), nullable=False),
        sa.Column(
            "processed_at",
            sa.DateTime(timezone=True),
            nullable=False,
            server_default=sa.func.now(),
        ),
        sa.PrimaryKeyConstraint("consumer", "event_id"),
        schema=schema,
    )


def drop_outbox_tables(schema: str) -> None:
    op.drop_table("processed_events", schema=schema)
    op.drop_table("outbox", schema=schema)


# core.events.relay.OUTBOX_CHANNEL; spelled out so revisions g0006 and t0010 never change.
_OUTBOX_CHANNEL = "unityplan_outbox"


def create_outbox_notify(quoted_schema: str) -> None:
    """A NOTIFY naming the schema whenever its outbox gets events, delivered at commit: the
    outbox relay publishes them at once instead of finding them at its next sweep."""
    # Statement-level: one notification per inserting statement; PostgreSQL also folds
    # identical notifications of one transaction into one.
    op.execute(
        f"""
        CREATE FUNCTION {quoted_schema}.notify_outbox_insert() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('{_OUTBOX_CHANNEL}', TG_TABLE_SCHEMA);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        f"""
        CREATE TRIGGER outbox_notify_insert
        AFTER INSERT ON {quoted_schema}.outbox
        FOR EACH STATEMENT EXECUTE FUNCTION {quoted_schema}.notify_outbox_insert()
        """
    )


def drop_outbox_notify(quoted_schema: str) -> None:
    op.execute(f"DROP TRIGGER outbox_notify_insert ON {quoted_schema}.outbox")
    op.execute(f"DROP FUNCTION {quoted_schema}.notify_outbox_insert()")
