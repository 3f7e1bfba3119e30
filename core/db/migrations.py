"""Apply the alembic trees from code: `global` on the default pod, `territory` per territory schema.

Used by `unityplan migrate`, `unityplan dev`, territory provisioning and the tests. Each run holds
a per-schema advisory lock, so services starting together never migrate one schema twice.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection
from sqlalchemy.ext.asyncio import create_async_engine
from sqlalchemy.pool import NullPool

from core.config import Settings
from core.db.migration_env import (
    GLOBAL_TREE,
    TERRITORY_TREE,
    VERSION_TABLE,
    prepare_schema,
)
from core.db.registry import find_territory, load_registry
from core.db.territories import GLOBAL_SCHEMA, Territory, schema_for, validate_territory_code
from core.errors import BadUserInput, InfrastructureError, NotFound

PROJECT_ROOT = Path(__file__).resolve().parents[2]
ALEMBIC_DIR = PROJECT_ROOT / "alembic"


@dataclass(frozen=True)
class MigrationOutcome:
    """One schema's revision before and after a run."""

    tree: str
    pod_id: str
    schema: str
    before: str | None
    after: str | None

    @property
    def changed(self) -> bool:
        return self.before != self.after


def alembic_config(tree: str, schema: str, connection: Connection | None = None) -> Config:
    """An alembic Config for one tree and target schema, optionally on an open connection."""
    ini = PROJECT_ROOT / "alembic.ini"
    config = Config(str(ini) if ini.exists() else None, ini_section=tree)
    config.set_main_option("script_location", str(ALEMBIC_DIR / tree))
    config.attributes["tree"] = tree
    config.attributes["schema"] = schema
    if connection is not None:
        config.attributes["connection"] = connection
    return config


def _pod_url(settings: Settings, pod_id: str) -> str:
    url = settings.database.all_pods().get(pod_id)
    if not url:
        if pod_id == settings.database.default_pod:
            raise InfrastructureError(
                "No database configured: set DATABASE_URL (or run `unityplan dev`)"
            )
        raise BadUserInput(f"Unknown pod {pod_id!r}", field="podId")
    return url


def _current_revision(connection: Connection, schema: str) -> str | None:
    context = MigrationContext.configure(
        connection, opts={"version_table": VERSION_TABLE, "version_table_schema": schema}
    )
    return context.get_current_revision()


async def _run_tree(
    settings: Settings,
    pod_id: str,
    tree: str,
    schema: str,
    action: Callable[[Config], None],
) -> MigrationOutcome:
    """Run one alembic command on `schema` of `pod_id`, in one transaction under the lock."""
    engine = create_async_engine(_pod_url(settings, pod_id), poolclass=NullPool)
    try:
        async with engine.begin() as connection:

            def migrate(sync_connection: Connection) -> MigrationOutcome:
                prepare_schema(sync_connection, schema)
                before = _current_revision(sync_connection, schema)
                action(alembic_config(tree, schema, sync_connection))
                after = _current_revision(sync_connection, schema)
                return MigrationOutcome(tree, pod_id, schema, before, after)

            return await connection.run_sync(migrate)
    finally:
        await engine.dispose()


def _upgrade(config: Config) -> None:
    command.upgrade(config, "head")


async def _registered(settings: Settings, code: str) -> Territory:
    validate_territory_code(code)
    engine = create_async_engine(
        _pod_url(settings, settings.database.default_pod), poolclass=NullPool
    )
    try:
        async with engine.connect() as connection:
            territory = await find_territory(connection, code)
    finally:
        await engine.dispose()
    if territory is None:
        raise NotFound("Territory not found", field="territoryCode")
    return territory


async def pod_url_for_schema(settings: Settings, schema: str) -> str:
    """The database URL holding `schema` (for the `alembic` command line)."""
    if schema == GLOBAL_SCHEMA:
        return _pod_url(settings, settings.database.default_pod)
    code = schema.removeprefix("territory_").replace("_", "-")
    territory = await _registered(settings, code)
    return _pod_url(settings, territory.pod_id)


# ---------------------------------------------------------------------- upgrades


async def upgrade_global(settings: Settings) -> MigrationOutcome:
    return await _run_tree(
        settings, settings.database.default_pod, GLOBAL_TREE, GLOBAL_SCHEMA, _upgrade
    )


async def upgrade_territory_schema(settings: Settings, pod_id: str, code: str) -> MigrationOutcome:
    """Create and migrate the territory's schema on `pod_id` (registered or not yet)."""
    return await _run_tree(settings, pod_id, TERRITORY_TREE, schema_for(code), _upgrade)


async def migrate_global(settings: Settings) -> None:
    """Upgrade the `global` schema of the default pod to the newest revision."""
    await upgrade_global(settings)


async def migrate_territory(settings: Settings, code: str) -> None:
    """Upgrade one registered territory's schema, on its pod, to the newest revision."""
    territory = await _registered(settings, code)
    await upgrade_territory_schema(settings, territory.pod_id, territory.code)


async def migrate_all_report(settings: Settings) -> list[MigrationOutcome]:
    """Upgrade `global`, then every registered territory; what each schema went through."""
    outcomes = [await upgrade_global(settings)]
    engine = create_async_engine(
        _pod_url(settings, settings.database.default_pod), poolclass=NullPool
    )
    try:
        async with engine.connect() as connection:
            registry = await load_registry(connection)
    finally:
        await engine.dispose()
    for territory in registry.values():
        outcomes.append(await upgrade_territory_schema(settings, territory.pod_id, territory.code))
    return outcomes


async def migrate_all(settings: Settings) -> None:
    """Upgrade global and every registered territory; running it again changes nothing."""
    await migrate_all_report(settings)


# ---------------------------------------------------------------------- downgrades


async def downgrade_global(settings: Settings, revision: str = "-1") -> None:
    await _run_tree(
        settings,
        settings.database.default_pod,
        GLOBAL_TREE,
        GLOBAL_SCHEMA,
        lambda config: command.downgrade(config, revision),
    )


async def downgrade_territory(settings: Settings, code: str, revision: str = "-1") -> None:
    territory = await _registered(settings, code)
    await _run_tree(
        settings,
        territory.pod_id,
        TERRITORY_TREE,
        territory.schema,
        lambda config: command.downgrade(config, revision),
    )


__all__ = [
    "MigrationOutcome",
    "downgrade_global",
    "downgrade_territory",
    "migrate_all",
    "migrate_all_report",
    "migrate_global",
    "migrate_territory",
    "upgrade_territory_schema",
]
