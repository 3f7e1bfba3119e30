"""Time series on plain PostgreSQL (this server has no TimescaleDB): the migration says which
path it took, login events follow the audit log, and the retention job deletes exactly the
expired rows while the audit log stays append-only for everyone else."""

from __future__ import annotations

import asyncio
import json
import logging
import secrets
import uuid
from collections.abc import AsyncIterator

import pytest
from click.testing import CliRunner
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core.config import Settings, get_settings
from core.db import Database, Territory
from core.db.migrations import migrate_global
from core.db.provisioning import create_territory
from core.db.retention import apply_retention
from unityplan.cli import main


@pytest.fixture(scope="module")
async def db(settings: Settings) -> AsyncIterator[Database]:
    await migrate_global(settings)
    database = Database(settings.database)
    yield database
    await database.dispose()


@pytest.fixture(scope="module")
async def timescale_available(db: Database) -> bool:
    async with db.global_session() as session:
        offered = await session.execute(
            text("SELECT 1 FROM pg_available_extensions WHERE name = 'timescaledb'")
        )
        return offered.first() is not None


async def _territory(settings: Settings, db: Database) -> Territory:
    code = f"ts{secrets.token_hex(3)}"
    return await create_territory(settings, db, code=code, name="Series land", type="country")


async def test_the_migration_reports_the_plain_path(
    settings: Settings, db: Database, timescale_available: bool, caplog: pytest.LogCaptureFixture
) -> None:
    if timescale_available:
        pytest.skip("this PostgreSQL offers TimescaleDB: the plain path is not taken here")
    with caplog.at_level(logging.INFO, logger="unityplan.migrations"):
        territory = await _territory(settings, db)
    messages = [r.getMessage() for r in caplog.records if r.name == "unityplan.migrations"]
    assert any(
        f"time series in {territory.schema}: TimescaleDB not available; plain tables" in m
        for m in messages
    ), messages
    async with db.territory_session(territory.code) as session:
        policies = (
            await session.execute(
                text(
                    "SELECT table_name, time_column, keep::text, mechanism"
                    " FROM retention_policies ORDER BY table_name"
                )
            )
        ).all()
        hypertables = await session.execute(
            text("SELECT to_regclass('timescaledb_information.hypertables')")
        )
    assert [tuple(row) for row in policies] == [
        ("audit_log", "created_at", "400 days", "job"),
        ("login_events", "occurred_at", "90 days", "job"),
    ]
    assert hypertables.scalar_one() is None


async def _audit(
    db: Database, territory: Territory, action: str, days_ago: int, **changes: str
) -> None:
    async with db.territory_session(territory.code) as session:
        await session.execute(
            text(
                "INSERT INTO audit_log (user_id, territory_code, action, changes, created_at)"
                " VALUES (:user, :code, :action, CAST(:changes AS jsonb),"
                " now() - make_interval(days => :days))"
            ),
            {
                "user": uuid.uuid4(),
                "code": territory.code,
                "action": action,
                "changes": json.dumps(changes) if changes else None,
                "days": days_ago,
            },
        )


async def _counts(db: Database, territory: Territory) -> tuple[int, int]:
    async with db.territory_session(territory.code) as session:
        audit = (await session.execute(text("SELECT count(*) FROM audit_log"))).scalar_one()
        logins = (await session.execute(text("SELECT count(*) FROM login_events"))).scalar_one()
    return int(audit), int(logins)


async def test_login_events_follow_the_audit_log_and_retention_removes_only_expired_rows(
    settings: Settings, db: Database, timescale_available: bool
) -> None:
    if timescale_available:
        pytest.skip("TimescaleDB retention policies apply here, not the job")
    territory = await _territory(settings, db)
    await _audit(db, territory, "user.login", 500)  # both expired
    await _audit(db, territory, "user.login_failed", 100, reason="credentials")  # login expired
    await _audit(db, territory, "user.logout", 1)
    await _audit(db, territory, "user.password_change", 500)  # audit only, expired
    await _audit(db, territory, "user.register", 10)  # audit only
    async with db.territory_session(territory.code) as session:
        events = (
            await session.execute(
                text("SELECT event, reason FROM login_events ORDER BY occurred_at")
            )
        ).all()
    assert [tuple(e) for e in events] == [
        ("login", None),
        ("login_failed", "credentials"),
        ("logout", None),
    ]
    assert await _counts(db, territory) == (5, 3)

    runs = {run.territory: run.removed for run in await apply_retention(db)}
    assert runs[territory.code] == 4  # two audit entries, two login events
    assert await _counts(db, territory) == (3, 1)
    assert (await apply_retention(db))[0].removed is not None  # repeatable

    # The job switched the append-only trigger off for its own delete only.
    with pytest.raises(DBAPIError, match="append-only"):
        async with db.territory_session(territory.code) as session:
            await session.execute(text("DELETE FROM audit_log"))
    assert await _counts(db, territory) == (3, 1)


async def test_retention_command_reports_each_territory(
    settings: Settings, db: Database, timescale_available: bool
) -> None:
    if timescale_available:
        pytest.skip("TimescaleDB retention policies apply here, not the job")
    territory = await _territory(settings, db)
    await _audit(db, territory, "user.login", 365)  # a login event past 90 days only
    runner = CliRunner(
        env={
            "DATABASE_URL": settings.database.url,
            "POD_DATABASE_URLS": json.dumps(settings.database.pod_urls),
        }
    )
    get_settings.cache_clear()
    try:
        # The command runs its own event loop: in a thread, beside this test's loop.
        result = await asyncio.to_thread(
            runner.invoke, main, ["retention", "run"], catch_exceptions=False
        )
    finally:
        get_settings.cache_clear()
    assert result.exit_code == 0, result.output
    assert f"{territory.code}: 1 expired rows removed" in result.output
    assert await _counts(db, territory) == (1, 0)
