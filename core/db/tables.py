"""Tables every schema shares: the transactional outbox and the consumers' idempotence record.

They carry no schema of their own: a territory session maps them to `territory_<code>`, a global
session to `global` (see `core.db`).
"""

from __future__ import annotations

from sqlalchemy import (
    Column,
    DateTime,
    Index,
    Integer,
    MetaData,
    PrimaryKeyConstraint,
    Table,
    Text,
    func,
    text,
)
from sqlalchemy.dialects.postgresql import JSONB, UUID

shared_metadata = MetaData()

outbox = Table(
    "outbox",
    shared_metadata,
    Column("id", UUID(as_uuid=True), primary_key=True),
    Column("subject", Text, nullable=False),
    Column("type", Text, nullable=False),
    Column("source", Text, nullable=False),
    # The whole CloudEvent as published (id, source, type, time, subject, data, territory, ...).
    Column("payload", JSONB, nullable=False),
    # W3C trace context (traceparent, tracestate) of the transaction that wrote the event.
    Column("headers", JSONB, nullable=False, server_default=text("'{}'::jsonb")),
    Column("created_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("available_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    Column("attempts", Integer, nullable=False, server_default=text("0")),
    Column("last_error", Text),
    Column("sent_at", DateTime(timezone=True)),
    Index("ix_outbox_pending", "available_at", postgresql_where=text("sent_at IS NULL")),
)

processed_events = Table(
    "processed_events",
    shared_metadata,
    Column("consumer", Text, nullable=False),
    Column("event_id", UUID(as_uuid=True), nullable=False),
    Column("processed_at", DateTime(timezone=True), nullable=False, server_default=func.now()),
    PrimaryKeyConstraint("consumer", "event_id"),
)
