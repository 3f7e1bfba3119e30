"""The two migration trees: idempotent upgrades, reversible newest revisions, shared tables."""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import asyncpg
import pytest
from alembic.script import ScriptDirectory
from sqlalchemy import Connection, inspect
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from core.config import Settings
from core.db import Database, Territory
from core.db.migration_env import GLOBAL_TREE, TERRITORY_TREE
from core.db.migrations import (
    PROJECT_ROOT,
    alembic_config,
    downgrade_global,
    downgrade_territory,
    migrate_all,
    migrate_all_report,
    migrate_global,
    migrate_territory,
)
from core.db.provisioning import create_territory
from core.db.tables import shared_metadata
from core.errors import NotFound
from tests.conftest import SECOND_POD

GLOBAL_TABLES = {
    "territories",
    "user_identities",
    "territory_managers",
    "role_assignments",
    "outbox",
    "processed_events",
}
TERRITORY_TABLES = {
    "settings",
    "communities",
    "community_members",
    "users",
    "invitation_tokens",
    "invitation_uses",
    "sessions",
    "audit_log",
    "user_profiles",
    "user_connections",
    "user_blocks",
    "outbox",
    "processed_events",
}


def _head(tree: str) -> str:
    heads = ScriptDirectory.from_config(alembic_config(tree, "unused")).get_heads()
    assert len(heads) == 1, f"the {tree} tree must have exactly one head, has {heads}"
    return heads[0]


def _previous(tree: str) -> str:
    script = ScriptDirectory.from_config(alembic_config(tree, "unused"))
    down = script.get_revision(_head(tree)).down_revision
    assert isinstance(down, str), f"the newest {tree} revision must follow exactly one other"
    return down


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _pod_url(settings: Settings, pod: str) -> str:
    return settings.database.all_pods()[pod]


async def _shape(url: str, schema: str) -> dict[str, Any]:
    """Tables, columns, indexes, constraints and the version of one schema: its whole shape."""
    connection = await asyncpg.connect(_plain(url))
    try:
        columns = await connection.fetch(
            "SELECT table_name, column_name, data_type, is_nullable, column_default"
            " FROM information_schema.columns WHERE table_schema = $1"
            " ORDER BY table_name, column_name",
            schema,
        )
        indexes = await connection.fetch(
            "SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = $1 ORDER BY 1", schema
        )
        constraints = await connection.fetch(
            "SELECT conname, pg_get_constraintdef(c.oid) AS definition FROM pg_constraint c"
            " JOIN pg_namespace n ON n.oid = c.connamespace WHERE n.nspname = $1 ORDER BY 1",
            schema,
        )
        version = await connection.fetchval(
            "SELECT version_num FROM " + _quoted(schema) + ".alembic_version"  # noqa: S608
        )
    finally:
        await connection.close()
    return {
        "tables": {row["table_name"] for row in columns} - {"alembic_version"},
        "columns": [tuple(row) for row in columns],
        "indexes": [tuple(row) for row in indexes],
        "constraints": [tuple(row) for row in constraints],
        "version": version,
    }


def _quoted(schema: str) -> str:
    # Test-made names only (global or schema_for output).
    return '"' + schema + '"'


@pytest.fixture(scope="module")
async def db(settings: Settings) -> AsyncIterator[Database]:
    await migrate_global(settings)
    database = Database(settings.database)
    yield database
    await database.dispose()


@pytest.fixture(scope="module")
async def territory_a(settings: Settings, db: Database, run_id: str) -> Territory:
    return await create_territory(settings, db, code=f"mig-a-{run_id}", name="A", type="country")


@pytest.fixture(scope="module")
async def territory_b(settings: Settings, db: Database, run_id: str) -> Territory:
    return await create_territory(
        settings, db, code=f"mig-b-{run_id}", name="B", type="country", pod_id=SECOND_POD
    )


async def test_each_tree_has_one_head_and_the_schemas_reach_it(
    settings: Settings, territory_a: Territory, territory_b: Territory
) -> None:
    default = settings.database.default_pod
    global_shape = await _shape(_pod_url(settings, default), "global")
    assert global_shape["version"] == _head(GLOBAL_TREE)
    assert global_shape["tables"] >= GLOBAL_TABLES
    for territory in (territory_a, territory_b):
        shape = await _shape(_pod_url(settings, territory.pod_id), territory.schema)
        assert shape["version"] == _head(TERRITORY_TREE)
        assert shape["tables"] >= TERRITORY_TABLES
    # Personal data stays out of global: no email, password, name, ip or user agent columns.
    personal = {"email", "password_hash", "full_name", "ip_address", "user_agent", "phone"}
    assert personal.isdisjoint({column[1] for column in global_shape["columns"]})
    # Each territory schema lives only on its own pod.
    connection = await asyncpg.connect(_plain(_pod_url(settings, default)))
    try:
        stray = await connection.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1", territory_b.schema
        )
    finally:
        await connection.close()
    assert stray == 0


async def test_migrating_twice_changes_nothing(
    settings: Settings, territory_a: Territory, territory_b: Territory
) -> None:
    targets = [
        (settings.database.default_pod, "global"),
        (territory_a.pod_id, territory_a.schema),
        (territory_b.pod_id, territory_b.schema),
    ]
    before = [await _shape(_pod_url(settings, pod), schema) for pod, schema in targets]
    first = await migrate_all_report(settings)
    second = await migrate_all_report(settings)
    after = [await _shape(_pod_url(settings, pod), schema) for pod, schema in targets]
    assert before == after
    assert not any(outcome.changed for outcome in first + second)
    reported = {(outcome.pod_id, outcome.schema) for outcome in second}
    assert set(targets) <= reported
    await migrate_territory(settings, territory_b.code)
    assert await _shape(_pod_url(settings, territory_b.pod_id), territory_b.schema) == after[2]


async def test_latest_revisions_downgrade_and_upgrade_again(
    settings: Settings, territory_a: Territory
) -> None:
    default_url = _pod_url(settings, settings.database.default_pod)
    territory_url = _pod_url(settings, territory_a.pod_id)
    global_before = await _shape(default_url, "global")
    territory_before = await _shape(territory_url, territory_a.schema)

    await downgrade_territory(settings, territory_a.code)
    await downgrade_global(settings)
    global_down = await _shape(default_url, "global")
    territory_down = await _shape(territory_url, territory_a.schema)
    # Whatever the newest revisions are, they are undone: one step back, and a different shape.
    assert global_down["version"] == _previous(GLOBAL_TREE)
    assert territory_down["version"] == _previous(TERRITORY_TREE)
    assert global_down != global_before
    assert territory_down != territory_before

    await migrate_all(settings)
    assert await _shape(default_url, "global") == global_before
    assert await _shape(territory_url, territory_a.schema) == territory_before


async def test_outbox_tables_match_the_shared_definitions(
    settings: Settings, territory_b: Territory
) -> None:
    """The relay and consumers use core/db/tables.py; the migrations must build exactly that."""
    for pod, schema in (
        (settings.database.default_pod, "global"),
        (SECOND_POD, territory_b.schema),
    ):
        engine = create_async_engine(_pod_url(settings, pod), poolclass=NullPool)
        try:
            async with engine.connect() as connection:

                def reflect(sync: Connection, schema: str = schema) -> dict[str, Any]:
                    inspector = inspect(sync)
                    return {
                        name: (
                            {
                                c["name"]: (type(c["type"]).__name__, c["nullable"])
                                for c in inspector.get_columns(name, schema=schema)
                            },
                            inspector.get_pk_constraint(name, schema=schema)["constrained_columns"],
                        )
                        for name in ("outbox", "processed_events")
                    }

                reflected = await connection.run_sync(reflect)
        finally:
            await engine.dispose()
        for table in shared_metadata.sorted_tables:
            columns, primary_key = reflected[table.name]
            assert set(columns) == set(table.columns.keys()), (schema, table.name)
            for column in table.columns:
                type_name, nullable = columns[column.name]
                assert nullable == column.nullable, (schema, table.name, column.name)
                expected = type(column.type).__name__
                assert type_name.upper() == expected.upper() or (expected, type_name) in {
                    ("DateTime", "TIMESTAMP"),
                    ("Text", "TEXT"),
                    ("Integer", "INTEGER"),
                }
            assert primary_key == [c.name for c in table.primary_key.columns]


async def test_migrating_an_unregistered_territory_is_not_found(
    settings: Settings, db: Database, run_id: str
) -> None:
    with pytest.raises(NotFound):
        await migrate_territory(settings, f"ghost-{run_id}")


def test_the_alembic_command_line_finds_the_territory_pod(
    settings: Settings, territory_b: Territory
) -> None:
    import json

    env = {
        **os.environ,
        "DATABASE_URL": settings.database.url,
        "POD_DATABASE_URLS": json.dumps(settings.database.pod_urls),
    }
    alembic = str(Path(sys.executable).with_name("alembic"))
    result = subprocess.run(  # noqa: S603 - fixed arguments
        [alembic, "-n", "territory", "-x", f"territory={territory_b.code}", "upgrade", "head"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    current = subprocess.run(  # noqa: S603 - fixed arguments
        [alembic, "-n", "territory", "-x", f"territory={territory_b.code}", "current"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert current.returncode == 0, current.stderr
    assert _head(TERRITORY_TREE) in current.stdout
    refused = subprocess.run(  # noqa: S603 - fixed arguments
        [alembic, "-n", "territory", "-x", "territory=dk; drop schema x", "current"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert refused.returncode != 0
    # One line (`FAILED: ...`), no traceback.
    assert (refused.stdout + refused.stderr).startswith("FAILED: Territory codes are")


async def test_migration_advisory_lock_lets_concurrent_runs_finish(
    settings: Settings, territory_a: Territory
) -> None:
    import asyncio

    await asyncio.gather(*(migrate_territory(settings, territory_a.code) for _ in range(3)))
    shape = await _shape(_pod_url(settings, territory_a.pod_id), territory_a.schema)
    assert shape["version"] == _head(TERRITORY_TREE)
