"""Territory sessions on two pods: data lands in its territory's schema on its pod, nowhere else."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import asyncpg
import pytest
from sqlalchemy import Column, MetaData, Table, Text, func, insert, select, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import make_url

from core.config import Settings
from core.db import Database, Territory, TerritoryType
from core.db.migrations import migrate_global
from core.db.provisioning import create_territory
from core.db.registry import territories
from core.db.tables import outbox
from core.errors import BadUserInput, NotFound
from tests.conftest import SECOND_POD

# A table without a schema, as subgraph code declares them: the session decides where it lives.
_metadata = MetaData()
settings_table = Table(
    "settings",
    _metadata,
    Column("key", Text, primary_key=True),
    Column("value", JSONB),
)


@pytest.fixture(scope="module")
async def db(settings: Settings) -> AsyncIterator[Database]:
    await migrate_global(settings)
    database = Database(settings.database)
    yield database
    await database.dispose()


@pytest.fixture(scope="module")
async def two_pods(settings: Settings, db: Database, run_id: str) -> tuple[Territory, Territory]:
    """`dk-<run>` on the default pod, `de-<run>` on pod-b."""
    dk = await create_territory(
        settings, db, code=f"dk-{run_id}", name="Denmark", type=TerritoryType.COUNTRY
    )
    de = await create_territory(
        settings, db, code=f"de-{run_id}", name="Germany", type="country", pod_id=SECOND_POD
    )
    return dk, de


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _keys_in(url: str, schema: str) -> set[str]:
    """The settings keys of `schema` in the database at `url`, read without SQLAlchemy."""
    connection = await asyncpg.connect(_plain(url))
    try:
        exists = await connection.fetchval("SELECT to_regclass($1)", f"{schema}.settings")
        if exists is None:
            return set()
        rows = await connection.fetch(f'SELECT key FROM "{schema}".settings')  # noqa: S608 - test-made name
        return {row["key"] for row in rows}
    finally:
        await connection.close()


async def test_rows_land_only_in_their_territorys_pod_and_schema(
    settings: Settings, db: Database, two_pods: tuple[Territory, Territory]
) -> None:
    dk, de = two_pods
    assert (dk.pod_id, de.pod_id) == (settings.database.default_pod, SECOND_POD)
    dk_key, de_key = f"dk-{uuid.uuid4()}", f"de-{uuid.uuid4()}"
    async with db.territory_session(dk.code) as session:
        await session.execute(insert(settings_table).values(key=dk_key, value="a"))
    async with db.territory_session(de.code) as session:
        await session.execute(insert(settings_table).values(key=de_key, value="b"))

    pod_a = settings.database.all_pods()[settings.database.default_pod]
    pod_b = settings.database.all_pods()[SECOND_POD]
    assert dk_key in await _keys_in(pod_a, dk.schema)
    assert de_key in await _keys_in(pod_b, de.schema)
    # Neither row exists anywhere else: not in the other pod, not in `public`.
    for url in (pod_a, pod_b):
        other = await _keys_in(url, de.schema if url == pod_a else dk.schema)
        assert {dk_key, de_key}.isdisjoint(other)
        assert {dk_key, de_key}.isdisjoint(await _keys_in(url, "public"))
    assert await _keys_in(pod_b, dk.schema) == set()

    async with db.territory_session(dk.code) as session:
        seen = set((await session.execute(select(settings_table.c.key))).scalars())
        # Raw SQL resolves in the same schema as the mapped tables.
        schema = (await session.execute(text("SELECT current_schema()"))).scalar_one()
    assert dk_key in seen
    assert de_key not in seen
    assert schema == dk.schema


async def test_a_failing_block_rolls_back(
    db: Database, two_pods: tuple[Territory, Territory]
) -> None:
    dk, _ = two_pods
    key = f"rollback-{uuid.uuid4()}"
    with pytest.raises(RuntimeError):  # noqa: PT012 - the block must write, then fail
        async with db.territory_session(dk.code) as session:
            await session.execute(insert(settings_table).values(key=key, value="x"))
            raise RuntimeError("abort")
    async with db.territory_session(dk.code) as session:
        count = await session.scalar(
            select(func.count()).select_from(settings_table).where(settings_table.c.key == key)
        )
    assert count == 0


async def test_global_session_uses_the_global_schema(
    db: Database, two_pods: tuple[Territory, Territory]
) -> None:
    async with db.global_session() as session:
        schema = (await session.execute(text("SELECT current_schema()"))).scalar_one()
        codes = set((await session.execute(select(territories.c.code))).scalars())
    assert schema == "global"
    assert {t.code for t in two_pods} <= codes


async def test_pod_session_reaches_a_territory_schema_on_its_pod(
    db: Database, two_pods: tuple[Territory, Territory]
) -> None:
    _, de = two_pods
    async with db.pod_session(SECOND_POD, de.schema) as session:
        assert (
            await session.scalar(text("SELECT current_database()"))
            == make_url(db.engine(SECOND_POD).url).database
        )
        # Its mapped tables are the schema's; the search path is left alone (a round trip
        # less on every event the relay publishes).
        assert await session.scalar(select(func.count()).select_from(outbox)) is not None
        assert await session.scalar(text("SELECT current_schema()")) != de.schema
    with pytest.raises(BadUserInput):
        db.pod_session(SECOND_POD, "public")
    with pytest.raises(BadUserInput):
        db.pod_session("nowhere", de.schema)


async def test_unknown_and_inactive_territories_are_not_found(
    settings: Settings, db: Database, run_id: str
) -> None:
    with pytest.raises(NotFound):
        await db.territory(f"nowhere-{run_id}")
    with pytest.raises(NotFound):
        async with db.territory_session(f"nowhere-{run_id}"):
            pass
    asleep = await create_territory(
        settings, db, code=f"asleep-{run_id}", name="Asleep", type="country"
    )
    assert (await db.territory(asleep.code)).is_active
    async with db.global_session() as session:
        await session.execute(
            territories.update().where(territories.c.code == asleep.code).values(is_active=False)
        )
    db.invalidate_territories()
    with pytest.raises(NotFound):
        await db.territory(asleep.code)
    assert asleep.code not in {t.code for t in await db.territories()}
    assert asleep.code in {t.code for t in await db.territories(include_inactive=True)}


@pytest.mark.parametrize("code", ["dk; drop schema", "../x", "DK", "d" * 200, "", "x"])
async def test_malicious_codes_never_reach_the_database(settings: Settings, code: str) -> None:
    broken = Database(
        settings.database.model_copy(update={"url": "postgresql+asyncpg://nobody@127.0.0.1:1/none"})
    )
    # A database that cannot be reached proves validation happens before any SQL.
    with pytest.raises(BadUserInput):
        await broken.territory(code)
    with pytest.raises(BadUserInput):
        async with broken.territory_session(code):
            pass
    await broken.dispose()


async def test_a_connection_the_server_ended_is_replaced_without_an_error(
    settings: Settings, db: Database
) -> None:
    """Connections are not pinged on checkout; one the server closed is never handed out."""
    async with db.global_session() as session:
        first = await session.scalar(select(func.pg_backend_pid()))
    admin = await asyncpg.connect(_plain(settings.database.url))
    try:
        assert await admin.fetchval("SELECT pg_terminate_backend($1)", first) is True
        # The backend ends a moment after it is told to; then its socket is closed here too.
        for _ in range(250):
            gone = await admin.fetchval(
                "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $1", first
            )
            if gone:
                break
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.1)
    finally:
        await admin.close()
    for _ in range(3):
        async with db.global_session() as session:
            again = await session.scalar(select(func.pg_backend_pid()))
        assert again != first
