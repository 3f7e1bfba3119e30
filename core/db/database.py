"""Engines per pod and sessions bound to a territory's pod and schema (or to `global`).

This is the only place that chooses a schema: code below a session runs unqualified tables
(`schema=None`), which the session's `schema_translate_map` sends to the right schema.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from typing import Any

from sqlalchemy import event, func, select
from sqlalchemy.exc import DisconnectionError
from sqlalchemy.ext.asyncio import (
    AsyncEngine,
    AsyncSession,
    async_sessionmaker,
    create_async_engine,
)

from core.config import DatabaseSettings
from core.db.registry_cache import TerritoryRegistryCache
from core.db.territories import (
    GLOBAL_SCHEMA,
    Territory,
    is_territory_schema,
    validate_territory_code,
)
from core.errors import BadUserInput, InfrastructureError, NotFound


def _refuse_closed(dbapi_connection: Any, record: Any, proxy: Any) -> None:
    """The pool's check of a connection it hands out, without a round trip to the server: a
    connection the server ended (a restart, an idle timeout, `pg_terminate_backend`) is
    already closed on this side, and the pool replaces it with a new one. A connection lost
    without a word fails its first statement instead, and the pool is refilled after it."""
    driver = getattr(dbapi_connection, "driver_connection", None)
    if driver is not None and driver.is_closed():
        raise DisconnectionError("the server closed this connection")


class Database:
    """The pods' engines, the cached territory registry and the session factories."""

    def __init__(self, settings: DatabaseSettings) -> None:
        self._settings = settings
        self._urls = settings.all_pods()
        self.pods: list[str] = sorted(self._urls)
        self.default_pod = settings.default_pod
        self._engines: dict[str, AsyncEngine] = {}
        self._sessionmakers: dict[tuple[str, str], async_sessionmaker[AsyncSession]] = {}
        self._registry = TerritoryRegistryCache(
            lambda: self.engine(self.default_pod), settings.territory_cache_ttl_seconds
        )

    # ------------------------------------------------------------------ engines

    def engine(self, pod_id: str) -> AsyncEngine:
        """The pod's engine, created on first use; one connection pool per pod."""
        engine = self._engines.get(pod_id)
        if engine is not None:
            return engine
        url = self._urls.get(pod_id)
        if not url:
            if pod_id == self.default_pod:
                raise InfrastructureError(
                    "No database configured: set DATABASE_URL (or run `unityplan dev`)"
                )
            raise InfrastructureError(
                f"Pod {pod_id!r} has no database URL: add it to POD_DATABASE_URLS"
            )
        engine = create_async_engine(
            url,
            pool_size=self._settings.pool_size,
            max_overflow=self._settings.pool_size,
            # No ping on every checkout (a round trip per transaction): `_refuse_closed`.
            pool_pre_ping=False,
            echo=self._settings.echo,
            # A failed statement's error (and so any log of it) names no values: they may be
            # passwords, tokens or personal data.
            hide_parameters=True,
            connect_args={"server_settings": {"application_name": f"unityplan:{pod_id}"}},
        )
        event.listen(engine.sync_engine.pool, "checkout", _refuse_closed)
        self._engines[pod_id] = engine
        return engine

    async def dispose(self) -> None:
        await self._registry.close()
        engines, self._engines = self._engines, {}
        self._sessionmakers.clear()
        for engine in engines.values():
            await engine.dispose()

    # ------------------------------------------------------------------ registry

    async def territory(self, code: str) -> Territory:
        """The active territory `code`; unknown or inactive codes raise `NotFound`."""
        validate_territory_code(code)
        found = await self._registry.get(code)
        if found is None or not found.is_active:
            raise NotFound("Territory not found", field="territoryCode")
        return found

    async def territories(self, *, include_inactive: bool = False) -> list[Territory]:
        registry = await self._registry.all()
        return [t for t in registry.values() if include_inactive or t.is_active]

    def invalidate_territories(self) -> None:
        """Forget the cached registry; the next lookup reads it again."""
        self._registry.invalidate()

    @property
    def territories_generation(self) -> int:
        """Moves on with every registry change this process hears of."""
        return self._registry.generation

    async def territories_changed(self, since: int, within: float) -> None:
        """Wait until the registry changes after generation `since`, at most `within` s."""
        await self._registry.changed_since(since, within)

    # ------------------------------------------------------------------ sessions

    @asynccontextmanager
    async def _transaction(
        self, pod_id: str, schema: str, *, search_path: bool = True
    ) -> AsyncIterator[AsyncSession]:
        factory = self._sessionmaker(pod_id, schema)
        async with factory() as session, session.begin():
            if search_path:
                # Raw SQL and server-side functions resolve unqualified names in the same
                # schema as the mapped tables. `set_config` takes the name as a bound parameter.
                await session.execute(select(func.set_config("search_path", schema, True)))
            yield session

    def _sessionmaker(self, pod_id: str, schema: str) -> async_sessionmaker[AsyncSession]:
        key = (pod_id, schema)
        factory = self._sessionmakers.get(key)
        if factory is None:
            bound = self.engine(pod_id).execution_options(schema_translate_map={None: schema})
            factory = async_sessionmaker(bound, expire_on_commit=False)
            self._sessionmakers[key] = factory
        return factory

    def territory_session(self, code: str) -> AbstractAsyncContextManager[AsyncSession]:
        """A session in one transaction on the territory's pod, its tables in its schema.

        Commits on normal exit, rolls back on an exception. Unknown or inactive codes raise
        `NotFound`, invalid ones `BadUserInput`, before any connection is opened.
        """

        @asynccontextmanager
        async def session() -> AsyncIterator[AsyncSession]:
            territory = await self.territory(code)
            async with self._transaction(territory.pod_id, territory.schema) as bound:
                yield bound

        return session()

    def global_session(self) -> AbstractAsyncContextManager[AsyncSession]:
        """A session in one transaction on the default pod, its tables in `global`."""
        return self._transaction(self.default_pod, GLOBAL_SCHEMA)

    def pod_session(self, pod_id: str, schema: str) -> AbstractAsyncContextManager[AsyncSession]:
        """A session on any pod and schema (the outbox relay walks every schema of a pod).

        Its mapped tables are in `schema`, but the search path is left as it is (one round
        trip less per transaction, on the way of every event): raw SQL run in it names the
        schema of each table.
        """
        if schema != GLOBAL_SCHEMA and not is_territory_schema(schema):
            raise BadUserInput("Not a UnityPlan schema", field="schema")
        if pod_id not in self._urls:
            raise BadUserInput("Unknown pod", field="podId")
        return self._transaction(pod_id, schema, search_path=False)
