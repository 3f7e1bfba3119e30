"""Audit log and login events as time series: TimescaleDB hypertables with retention policies
where the extension can be used, plain tables with the `apply_retention()` job otherwise.

`login_events` is a compact series of sign-ins, sign-in failures and sign-outs (no addresses,
no device details), filled from the audit log by a trigger, so the services write one row.
The path taken is logged and recorded in `retention_policies.mechanism`.

Revision ID: ot001
Revises: a0002
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

from core.db.migration_env import quoted_target_schema, target_schema
from core.db.timeseries import (
    RETENTION_JOB,
    TIMESCALEDB,
    TimeSeries,
    create_retention_job,
    create_retention_policies,
    log,
    make_hypertable,
    register,
    timescaledb_schema,
)

revision: str = "ot001"
down_revision: str | Sequence[str] | None = "a0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

AUDIT_LOG = TimeSeries("audit_log", "created_at", "400 days", chunk="30 days")
LOGIN_EVENTS = TimeSeries("login_events", "occurred_at", "90 days")
# Audit actions that are login events, and the `event` each becomes.
LOGIN_ACTIONS = ("user.login", "user.login_failed", "user.logout", "user.logout_all")


def upgrade() -> None:
    schema = target_schema()
    qualified = quoted_target_schema()
    connection = op.get_bind()
    op.create_table(
        LOGIN_EVENTS.table,
        sa.Column(
            "occurred_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("user_id", postgresql.UUID(as_uuid=True)),
        sa.Column("event", sa.Text, nullable=False),  # login, login_failed, logout, logout_all
        sa.Column("reason", sa.Text),  # of a failure: credentials, second_factor
        schema=schema,
    )
    op.create_index(
        "ix_login_events_user",
        LOGIN_EVENTS.table,
        ["user_id", sa.text("occurred_at DESC")],
        schema=schema,
    )
    op.create_index(
        "ix_login_events_occurred_at", LOGIN_EVENTS.table, ["occurred_at"], schema=schema
    )
    actions = ", ".join(f"'{action}'" for action in LOGIN_ACTIONS)
    op.execute(
        f"""
        CREATE FUNCTION {qualified}.audit_log_to_login_events() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO {qualified}.login_events (occurred_at, user_id, event, reason)
            VALUES (NEW.created_at, NEW.user_id, substr(NEW.action, 6), NEW.changes ->> 'reason');
            RETURN NULL;
        END
        $$
        """  # noqa: S608 - the schema is a quoted identifier of a validated name
    )
    op.execute(
        f"""
        CREATE TRIGGER audit_log_to_login_events
        AFTER INSERT ON {qualified}.audit_log
        FOR EACH ROW WHEN (NEW.action IN ({actions}))
        EXECUTE FUNCTION {qualified}.audit_log_to_login_events()
        """
    )
    create_retention_policies(qualified)
    extension = timescaledb_schema(connection)
    if extension is not None:
        # A hypertable's unique indexes must include its time column.
        op.execute(f"ALTER TABLE {qualified}.audit_log DROP CONSTRAINT audit_log_pkey")
        op.execute(f"ALTER TABLE {qualified}.audit_log ADD PRIMARY KEY (id, created_at)")
        for series in (AUDIT_LOG, LOGIN_EVENTS):
            make_hypertable(connection, extension, schema, series)
            register(qualified, series, TIMESCALEDB)
        log.info(
            "time series in %s: TimescaleDB hypertables audit_log (keep %s) and login_events"
            " (keep %s) with retention policies",
            schema,
            AUDIT_LOG.keep,
            LOGIN_EVENTS.keep,
        )
        return
    for series in (AUDIT_LOG, LOGIN_EVENTS):
        register(qualified, series, RETENTION_JOB)
    create_retention_job(qualified)
    log.info(
        "time series in %s: TimescaleDB not available; plain tables audit_log (keep %s) and"
        " login_events (keep %s), deleted by %s.apply_retention() (unityplan retention run)",
        schema,
        AUDIT_LOG.keep,
        LOGIN_EVENTS.keep,
        schema,
    )


def downgrade() -> None:
    schema = target_schema()
    qualified = quoted_target_schema()
    # A hypertable stays one (TimescaleDB has no way back); its policies go with the table rows.
    op.execute(f"DROP TRIGGER audit_log_to_login_events ON {qualified}.audit_log")
    op.execute(f"DROP FUNCTION {qualified}.audit_log_to_login_events()")
    op.execute(f"DROP FUNCTION IF EXISTS {qualified}.apply_retention()")
    op.drop_table("retention_policies", schema=schema)
    op.drop_table(LOGIN_EVENTS.table, schema=schema)
