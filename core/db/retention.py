"""The retention job of time series on plain PostgreSQL: `apply_retention()` in every territory
schema whose tables are not TimescaleDB hypertables (those have policies of their own)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import text

from core.db.database import Database
from core.db.timeseries import RETENTION_JOB


@dataclass(frozen=True)
class RetentionRun:
    territory: str
    removed: int | None  # None: nothing for the job to do (TimescaleDB policies, or none)


async def apply_retention(db: Database) -> list[RetentionRun]:
    """Delete expired time-series rows of every active territory, one transaction each."""
    runs: list[RetentionRun] = []
    for territory in await db.territories():
        async with db.territory_session(territory.code) as session:
            schema = session.get_bind().dialect.identifier_preparer.quote_schema(territory.schema)
            has_job = (
                await session.execute(
                    text(
                        "SELECT EXISTS (SELECT 1 FROM pg_proc p JOIN pg_namespace n"
                        " ON n.oid = p.pronamespace WHERE n.nspname = :schema"
                        " AND p.proname = 'apply_retention')"
                    ),
                    {"schema": territory.schema},
                )
            ).scalar_one()
            removed: int | None = None
            if has_job:
                policies = (
                    await session.execute(
                        text(
                            f"SELECT count(*) FROM {schema}.retention_policies"  # noqa: S608 - quoted
                            " WHERE mechanism = :job"
                        ),
                        {"job": RETENTION_JOB},
                    )
                ).scalar_one()
                if policies:
                    removed = int(
                        (
                            await session.execute(text(f"SELECT {schema}.apply_retention()"))
                        ).scalar_one()
                    )
        runs.append(RetentionRun(territory.code, removed))
    return runs
