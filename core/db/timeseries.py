"""Time-series tables for migrations: TimescaleDB hypertables with a retention policy where the
extension can be used, plain tables with a retention job (`apply_retention()`) where it cannot.

Each schema records what it got in `retention_policies` (one row per time-series table: how long
rows are kept, on which time column, and the `mechanism`, `timescaledb` or `job`).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

from alembic import context, op
from sqlalchemy import Connection, text

log = logging.getLogger("unityplan.migrations")

TIMESCALEDB = "timescaledb"
RETENTION_JOB = "job"
EXTENSION = "timescaledb"
# Where the extension's API lives when this code creates it; an existing one is found wherever.
EXTENSION_SCHEMA = "public"


@dataclass(frozen=True)
class TimeSeries:
    table: str
    time_column: str
    keep: str  # a PostgreSQL interval, e.g. '90 days'
    chunk: str = "7 days"


def timescaledb_schema(connection: Connection) -> str | None:
    """The schema of the TimescaleDB extension, creating it if the server offers it; None when
    it is not installed on the server or cannot be loaded (not in shared_preload_libraries).

    Printing SQL (`alembic ... --sql`) has no server to ask: the plain path is printed.
    """
    if context.is_offline_mode():
        return None
    installed = _installed_schema(connection)
    if installed is not None:
        return installed
    offered = connection.execute(
        text("SELECT 1 FROM pg_available_extensions WHERE name = :name"), {"name": EXTENSION}
    ).first()
    if offered is None:
        return None
    savepoint = connection.begin_nested()
    try:
        connection.execute(
            text(f"CREATE EXTENSION IF NOT EXISTS {EXTENSION} WITH SCHEMA {EXTENSION_SCHEMA}")
        )
    except Exception as exc:  # offered but unusable: the plain path still works
        savepoint.rollback()
        log.warning("TimescaleDB is installed but cannot be enabled: %s", exc)
        return None
    savepoint.commit()
    return _installed_schema(connection)


def _installed_schema(connection: Connection) -> str | None:
    row = connection.execute(
        text(
            "SELECT n.nspname FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace"
            " WHERE e.extname = :name"
        ),
        {"name": EXTENSION},
    ).first()
    return str(row[0]) if row is not None else None


def create_retention_policies(qualified_schema: str) -> None:
    op.execute(
        text(
            f"""
            CREATE TABLE IF NOT EXISTS {qualified_schema}.retention_policies (
                table_name text PRIMARY KEY,
                time_column text NOT NULL,
                keep interval NOT NULL,
                mechanism text NOT NULL CHECK (mechanism IN ('timescaledb', 'job'))
            )
            """
        )
    )


def register(qualified_schema: str, series: TimeSeries, mechanism: str) -> None:
    upsert = (
        f"INSERT INTO {qualified_schema}.retention_policies"  # noqa: S608 - a quoted identifier
        " (table_name, time_column, keep, mechanism)"
        " VALUES (:table, :column, CAST(CAST(:keep AS text) AS interval), :mechanism)"
        " ON CONFLICT (table_name) DO UPDATE SET time_column = EXCLUDED.time_column,"
        " keep = EXCLUDED.keep, mechanism = EXCLUDED.mechanism"
    )
    op.execute(
        text(upsert).bindparams(
            table=series.table, column=series.time_column, keep=series.keep, mechanism=mechanism
        )
    )


def make_hypertable(
    connection: Connection, extension_schema: str, schema: str, series: TimeSeries
) -> None:
    """Turn `schema.table` into a hypertable (moving existing rows) with a retention policy."""
    api = connection.dialect.identifier_preparer.quote_schema(extension_schema)
    relation = f"{_quote(connection, schema)}.{_quote(connection, series.table)}"
    op.execute(
        text(
            f"SELECT {api}.create_hypertable(CAST(CAST(:relation AS text) AS regclass), :column,"
            " chunk_time_interval => CAST(CAST(:chunk AS text) AS interval), migrate_data => true,"
            " if_not_exists => true)"
        ).bindparams(relation=relation, column=series.time_column, chunk=series.chunk)
    )
    op.execute(
        text(
            f"SELECT {api}.add_retention_policy(CAST(CAST(:relation AS text) AS regclass),"
            " CAST(CAST(:keep AS text) AS interval), if_not_exists => true)"
        ).bindparams(relation=relation, keep=series.keep)
    )


def create_retention_job(qualified_schema: str) -> None:
    """`apply_retention()`: delete rows older than each `job` policy's interval; returns how
    many. The audit log refuses deletes by trigger, so that trigger is off for the delete
    only, inside the job's transaction (other sessions never see it disabled)."""
    op.execute(
        text(
            f"""
            CREATE OR REPLACE FUNCTION {qualified_schema}.apply_retention() RETURNS bigint
            LANGUAGE plpgsql AS $$
            DECLARE
                policy record;
                removed bigint := 0;
                count bigint;
                append_only boolean;
                relation text;
            BEGIN
                FOR policy IN
                    SELECT table_name, time_column, keep
                      FROM {qualified_schema}.retention_policies
                     WHERE mechanism = 'job'
                     ORDER BY table_name
                LOOP
                    relation := quote_ident('{_unquoted(qualified_schema)}') || '.'
                                || quote_ident(policy.table_name);
                    SELECT EXISTS (
                        SELECT 1 FROM pg_trigger
                         WHERE tgrelid = CAST(relation AS regclass)
                           AND tgname = 'audit_log_append_only'
                    ) INTO append_only;
                    IF append_only THEN
                        EXECUTE 'ALTER TABLE ' || relation
                                || ' DISABLE TRIGGER audit_log_append_only';
                    END IF;
                    EXECUTE 'DELETE FROM ' || relation || ' WHERE '
                            || quote_ident(policy.time_column) || ' < now() - $1'
                        USING policy.keep;
                    GET DIAGNOSTICS count = ROW_COUNT;
                    removed := removed + count;
                    IF append_only THEN
                        EXECUTE 'ALTER TABLE ' || relation
                                || ' ENABLE TRIGGER audit_log_append_only';
                    END IF;
                END LOOP;
                RETURN removed;
            END
            $$
            """  # noqa: S608 - the schema is a quoted identifier of a validated name
        )
    )


def _quote(connection: Connection, name: str) -> str:
    return connection.dialect.identifier_preparer.quote(name)


def _unquoted(qualified_schema: str) -> str:
    """The schema's plain name for format('%I'): schema names here are `territory_<code>`
    (letters, digits, underscores: validated), so stripping the quotes is exact."""
    return qualified_schema.strip('"')
