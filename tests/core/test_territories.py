"""Territory provisioning rules, re-runs and the registry cache."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable

import asyncpg
import pytest
from sqlalchemy import event
from sqlalchemy.engine import make_url

from core.config import Settings
from core.db import Database, Territory, TerritoryType
from core.db.migrations import migrate_global
from core.db.provisioning import create_territory
from core.db.registry import territories
from core.db.territories import schema_for, territory_code_of
from core.errors import BadUserInput, Conflict, NotFound
from tests.conftest import SECOND_POD


@pytest.fixture(scope="module")
async def db(settings: Settings) -> AsyncIterator[Database]:
    await migrate_global(settings)
    database = Database(settings.database)
    yield database
    await database.dispose()


@pytest.fixture(scope="module")
async def country(settings: Settings, db: Database, run_id: str) -> Territory:
    return await create_territory(
        settings,
        db,
        code=f"no-{run_id}",
        name="Norway",
        type=TerritoryType.COUNTRY,
        timezone="Europe/Oslo",
        locale="nb_NO",
        default_language="nb",
    )


async def _schema_exists(settings: Settings, pod: str, schema: str) -> bool:
    url = make_url(settings.database.all_pods()[pod]).set(drivername="postgresql")
    connection = await asyncpg.connect(url.render_as_string(hide_password=False))
    try:
        found = await connection.fetchval(
            "SELECT count(*) FROM pg_namespace WHERE nspname = $1", schema
        )
    finally:
        await connection.close()
    return bool(found)


async def test_a_country_is_registered_with_its_schema(
    settings: Settings, db: Database, country: Territory
) -> None:
    assert country.type is TerritoryType.COUNTRY
    assert country.parent_code is None
    assert country.pod_id == settings.database.default_pod
    assert (country.timezone, country.locale, country.default_language) == (
        "Europe/Oslo",
        "nb_NO",
        "nb",
    )
    assert country.is_active
    assert country.metadata == {}
    assert await db.territory(country.code) == country
    assert await _schema_exists(settings, country.pod_id, country.schema)


async def test_re_running_keeps_the_same_territory(
    settings: Settings, db: Database, country: Territory
) -> None:
    again = await create_territory(
        settings, db, code=country.code, name=country.name, type="country"
    )
    # Fields not given again keep their values; nothing moves or duplicates.
    assert again == country
    renamed = await create_territory(
        settings, db, code=country.code, name="Kingdom of Norway", type="country"
    )
    assert renamed.name == "Kingdom of Norway"
    assert (renamed.pod_id, renamed.created_at, renamed.timezone) == (
        country.pod_id,
        country.created_at,
        country.timezone,
    )
    assert (await db.territory(country.code)).name == "Kingdom of Norway"
    await create_territory(settings, db, code=country.code, name=country.name, type="country")


async def test_a_territory_never_moves_on_re_run(
    settings: Settings, db: Database, country: Territory, run_id: str
) -> None:
    with pytest.raises(Conflict):
        await create_territory(
            settings, db, code=country.code, name="x", type="country", pod_id=SECOND_POD
        )
    with pytest.raises(Conflict):
        await create_territory(settings, db, code=country.code, name="x", type="first_nation")
    # The refused run created nothing on the other pod.
    assert not await _schema_exists(settings, SECOND_POD, country.schema)

    remote = await create_territory(
        settings, db, code=f"fo-{run_id}", name="Faroe", type="country", pod_id=SECOND_POD
    )
    # Without --pod a re-run finds the territory where it is.
    again = await create_territory(settings, db, code=remote.code, name="Faroe", type="country")
    assert again.pod_id == SECOND_POD


async def test_communities_need_an_existing_parent(
    settings: Settings, db: Database, country: Territory, run_id: str
) -> None:
    code = f"no-oslo-{run_id}"
    with pytest.raises(BadUserInput) as missing:
        await create_territory(settings, db, code=code, name="Oslo", type="community")
    assert missing.value.extensions["field"] == "parentCode"
    with pytest.raises(BadUserInput) as unknown:
        await create_territory(
            settings, db, code=code, name="Oslo", type="community", parent_code=f"zz-{run_id}"
        )
    assert unknown.value.extensions["field"] == "parentCode"
    with pytest.raises(BadUserInput):
        await create_territory(
            settings, db, code=code, name="Oslo", type="community", parent_code="../x"
        )
    with pytest.raises(BadUserInput):
        await create_territory(
            settings, db, code=code, name="Oslo", type="community", parent_code=code
        )
    assert not await _schema_exists(settings, country.pod_id, f"territory_no_oslo_{run_id}")

    oslo = await create_territory(
        settings, db, code=code, name="Oslo", type="community", parent_code=country.code
    )
    assert oslo.parent_code == country.code
    assert oslo.type is TerritoryType.COMMUNITY


async def test_countries_and_first_nations_have_no_parent(
    settings: Settings, db: Database, country: Territory, run_id: str
) -> None:
    for kind in ("country", "first_nation"):
        with pytest.raises(BadUserInput) as raised:
            await create_territory(
                settings, db, code=f"sami-{run_id}", name="S", type=kind, parent_code=country.code
            )
        assert raised.value.extensions["field"] == "parentCode"
    nation = await create_territory(
        settings, db, code=f"haida-fn-{run_id}", name="Haida", type="first_nation"
    )
    assert nation.schema == f"territory_haida_fn_{run_id}"


@pytest.mark.parametrize(
    ("overrides", "field"),
    [
        ({"pod_id": "atlantis"}, "podId"),
        ({"type": "planet"}, "type"),
        ({"name": "   "}, "name"),
        ({"code": "DK"}, "territoryCode"),
        ({"code": "dk; drop schema global cascade"}, "territoryCode"),
    ],
)
async def test_invalid_requests_are_refused_before_any_change(
    settings: Settings, db: Database, run_id: str, overrides: dict[str, str], field: str
) -> None:
    request = {"code": f"bad-{run_id}", "name": "Bad", "type": "country", **overrides}
    with pytest.raises(BadUserInput) as raised:
        await create_territory(settings, db, **request)  # type: ignore[arg-type]
    assert raised.value.extensions["field"] == field
    with pytest.raises(NotFound):
        await db.territory(f"bad-{run_id}")
    assert not await _schema_exists(
        settings, settings.database.default_pod, f"territory_bad_{run_id}"
    )


async def test_the_registry_cache_follows_changes(
    settings: Settings, db: Database, run_id: str
) -> None:
    other_process = Database(settings.database)
    try:
        before = {t.code for t in await other_process.territories()}
        code = f"is-{run_id}"
        assert code not in before
        await create_territory(settings, db, code=code, name="Iceland", type="country")
        # The creating process sees it at once (its cache was invalidated) ...
        assert code in {t.code for t in await db.territories()}
        # ... and another process finds it on first lookup, then in its listing.
        assert (await other_process.territory(code)).name == "Iceland"
        assert code in {t.code for t in await other_process.territories()}

        await _deactivate(db, code)
        db.invalidate_territories()
        with pytest.raises(NotFound):
            await db.territory(code)
        # Elsewhere the change shows once the cache entry expires (TERRITORY_CACHE_TTL_SECONDS).
        deadline = time.monotonic() + 10
        while True:
            try:
                await other_process.territory(code)
            except NotFound:
                break
            assert time.monotonic() < deadline, "a deactivated territory stayed cached"
            await asyncio.sleep(0.05)
    finally:
        await other_process.dispose()


async def _deactivate(db: Database, code: str) -> None:
    async with db.global_session() as session:
        await session.execute(
            territories.update().where(territories.c.code == code).values(is_active=False)
        )


async def test_other_processes_drop_their_cache_when_the_registry_changes(
    settings: Settings, db: Database, run_id: str
) -> None:
    """With a TTL of an hour, only the change notification can explain a fresh answer."""
    patient = Database(settings.database.model_copy(update={"territory_cache_ttl_seconds": 3600}))
    try:
        code = f"gl-{run_id}"
        missing = f"gl-later-{run_id}"
        with pytest.raises(NotFound):
            await patient.territory(missing)  # remembered as missing
        await create_territory(settings, db, code=code, name="Greenland", type="country")
        await create_territory(settings, db, code=missing, name="Later", type="country")
        await _until(lambda: patient.territory(missing), expect_found=True)
        assert (await patient.territory(code)).name == "Greenland"
        await _deactivate(db, code)
        await _until(lambda: patient.territory(code), expect_found=False)
        assert code not in {t.code for t in await patient.territories()}
    finally:
        await patient.dispose()


async def test_an_expired_copy_is_answered_at_once_and_read_again_in_the_background(
    settings: Settings, db: Database, country: Territory
) -> None:
    """While changes are followed, no lookup waits for the whole registry to load."""
    brief = Database(settings.database.model_copy(update={"territory_cache_ttl_seconds": 0.2}))
    statements: list[str] = []

    def counted(*args: object) -> None:
        statements.append(str(args[2]))

    try:
        assert (await brief.territory(country.code)).name == "Norway"  # read, and listening
        event.listen(brief.engine(brief.default_pod).sync_engine, "before_cursor_execute", counted)
        await asyncio.sleep(0.3)  # the copy is past its TTL
        assert (await brief.territory(country.code)).name == "Norway"
        assert statements == []  # answered without waiting for a read ...

        async def read_again() -> bool:
            return any("territories" in statement for statement in statements)

        deadline = time.monotonic() + 10
        while not await read_again():  # ... which follows in the background
            assert time.monotonic() < deadline, "the expired copy was never read again"
            await asyncio.sleep(0.02)
        assert (await brief.territory(country.code)).name == "Norway"
    finally:
        await brief.dispose()


async def _until(
    lookup: Callable[[], Awaitable[Territory]], *, expect_found: bool, seconds: float = 10
) -> None:
    deadline = time.monotonic() + seconds
    while True:
        try:
            await lookup()
            found = True
        except NotFound:
            found = False
        if found == expect_found:
            return
        assert time.monotonic() < deadline, "the registry change never reached the cache"
        await asyncio.sleep(0.02)


async def test_concurrent_creation_yields_one_territory(
    settings: Settings, db: Database, run_id: str
) -> None:
    code = f"fi-{run_id}"
    created = await asyncio.gather(
        *(
            create_territory(settings, db, code=code, name="Finland", type="country")
            for _ in range(3)
        )
    )
    assert {territory.code for territory in created} == {code}
    assert len({territory.created_at for territory in created}) == 1
    assert await _schema_exists(settings, settings.database.default_pod, created[0].schema)


def test_a_schema_name_gives_back_its_territory_code() -> None:
    for code in ("dk", "dk-aarhus", "fn-123"):
        assert territory_code_of(schema_for(code)) == code
    for schema in ("global", "public", "territory_", "territory_NOT A CODE", "territory_dk;drop"):
        assert territory_code_of(schema) is None
