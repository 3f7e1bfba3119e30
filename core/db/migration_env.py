"""What both alembic trees' `env.py` run: the target schema comes from the config, never the SQL.

Programmatic callers (`core.db.migrations`) hand over an open connection and the schema in
`config.attributes`; the `alembic` command line names the territory with `-x territory=<code>`.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from alembic import context
from alembic.config import Config
from alembic.util import CommandError
from sqlalchemy import Connection, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool
from sqlalchemy.schema import CreateSchema

from core.config import Settings, get_settings
from core.db.territories import GLOBAL_SCHEMA, schema_for
from core.errors import ConfigError, InfrastructureError, UnityPlanError

GLOBAL_TREE = "global"
TERRITORY_TREE = "territory"
VERSION_TABLE = "alembic_version"


def target_schema() -> str:
    """The schema the running migration writes to (for `schema=` in revision files)."""
    schema = context.config.attributes.get("schema")
    if not isinstance(schema, str):
        raise RuntimeError("The migration environment did not set a target schema")
    return schema


def quoted_target_schema() -> str:
    """The target schema as a quoted SQL identifier, for the rare raw DDL (functions, triggers)."""
    return context.get_bind().dialect.identifier_preparer.quote_schema(target_schema())


def lock_migrations(connection: Connection, schema: str) -> None:
    """Serialise migrations of one schema across processes, until the transaction ends."""
    key = func.hashtext("unityplan.migrate:" + schema)
    connection.execute(select(func.pg_advisory_xact_lock(key)))


def prepare_schema(connection: Connection, schema: str) -> None:
    """Create the schema if needed and resolve unqualified names in it for this transaction."""
    lock_migrations(connection, schema)
    connection.execute(CreateSchema(schema, if_not_exists=True))
    connection.execute(select(func.set_config("search_path", schema, True)))


def configure_and_run(connection: Connection, schema: str) -> None:
    context.configure(
        connection=connection,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
        # Autogenerate would compare with the live metadata, which is not schema-bound.
        target_metadata=None,
    )
    with context.begin_transaction():
        context.run_migrations()


def run(command_line_settings: Callable[[], Settings] = get_settings) -> None:
    """Entry point of each tree's env.py; on the command line, the database is that of
    `command_line_settings()`."""
    config = context.config
    if context.is_offline_mode():
        _run_offline(config)
        return
    connection = config.attributes.get("connection")
    if connection is not None:
        configure_and_run(connection, target_schema())
    else:
        try:
            asyncio.run(_run_from_command_line(config, command_line_settings()))
        # The alembic command line prints these as one `FAILED:` line, without a traceback.
        except (ConfigError, InfrastructureError, UnityPlanError) as exc:
            raise CommandError(str(exc)) from None
        except DBAPIError as exc:
            cause = str(exc.orig).strip().splitlines()[0]
            raise CommandError(f"Database error: {cause}") from None
        except OSError as exc:
            raise CommandError(f"Cannot reach PostgreSQL (DATABASE_URL): {exc}") from None


def _tree(config: Config) -> str:
    tree = config.attributes.get("tree") or config.config_ini_section
    if tree not in (GLOBAL_TREE, TERRITORY_TREE):
        raise RuntimeError(f"Unknown migration tree {tree!r}: use -n global or -n territory")
    return str(tree)


def _schema_from_arguments(config: Config) -> str:
    if _tree(config) == GLOBAL_TREE:
        return GLOBAL_SCHEMA
    code = context.get_x_argument(as_dictionary=True).get("territory")
    if not code:
        raise RuntimeError("The territory tree needs -x territory=<code>")
    return schema_for(code)


def _run_offline(config: Config) -> None:
    schema = config.attributes.get("schema") or _schema_from_arguments(config)
    config.attributes["schema"] = schema
    context.configure(
        url="postgresql://",
        dialect_name="postgresql",
        literal_binds=True,
        version_table=VERSION_TABLE,
        version_table_schema=schema,
    )
    with context.begin_transaction():
        context.execute(CreateSchema(schema, if_not_exists=True))
        context.run_migrations()


async def _run_from_command_line(config: Config, settings: Settings) -> None:
    from core.db.migrations import pod_url_for_schema

    schema = _schema_from_arguments(config)
    config.attributes["schema"] = schema
    url = await pod_url_for_schema(settings, schema)
    engine = create_async_engine(url, poolclass=NullPool)
    try:
        async with engine.begin() as connection:

            def migrate(sync_connection: Connection) -> Any:
                prepare_schema(sync_connection, schema)
                configure_and_run(sync_connection, schema)

            await connection.run_sync(migrate)
    finally:
        await engine.dispose()
