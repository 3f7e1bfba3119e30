"""Outbox relay throughput: events per second published from PostgreSQL outboxes to JetStream.

Creates a scratch database and NATS namespace, enqueues N events spread over the global outbox
and a territory outbox, times one relay (or several competing ones) draining them, checks every
event reached JetStream exactly once, and removes what it created.

    .venv/bin/python bench/outbox_relay.py [--events 5000] [--batch 100] [--relays 1]

Servers: TEST_POSTGRES_URL / TEST_NATS_URL, else the local defaults (127.0.0.1:5432, :4222).

Recorded 2026-11-26 on a 2-vCPU AMD EPYC container (load average ~3 from other work),
PostgreSQL 15, nats-server 2.9.10 with file storage, all on one host; 5000 events of ~330 bytes,
batch 100, three runs each:
    1 relay    3,760 / 4,350 / 5,130 events/s   (median ~4,350)
    2 relays   2,120 / 3,830 / 4,500 events/s   (no gain: both relays share the two cores with
                                                 PostgreSQL and NATS; they scale across hosts)
Publishing itself is pipelined per batch (~11,000 events/s); the rest is the claim (SELECT ...
FOR UPDATE SKIP LOCKED) and the mark (UPDATE ... sent_at) round trips.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import time

import asyncpg
from prometheus_client import CollectorRegistry
from sqlalchemy import func, insert, select
from sqlalchemy.engine import make_url

from core.config import Settings, load_settings
from core.db import Database, TerritoryType
from core.db.migrations import migrate_global
from core.db.provisioning import create_territory
from core.db.tables import outbox
from core.events import Event, EventBus, OutboxRelay
from core.events.subjects import global_subject, territory_subject

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
NATS_URL = os.environ.get("TEST_NATS_URL", "nats://127.0.0.1:4222")
TERRITORY = "bench"


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


async def _fill(db: Database, count: int) -> None:
    """`count` outbox rows, half global, half in the territory; inserted in bulk, since the
    benchmark measures the relay, not `enqueue`."""
    for outbox_session, subject, territory in (
        (db.global_session, global_subject("bench", "happened"), None),
        (
            lambda: db.territory_session(TERRITORY),
            territory_subject(TERRITORY, "bench", "happened"),
            TERRITORY,
        ),
    ):
        rows = []
        for n in range(count // 2):
            event = Event(
                type="org.unityplan.bench",
                source="/bench",
                subject=subject,
                data={"n": n, "padding": "x" * 200},
                territory=territory,
            )
            rows.append(
                {
                    "id": event.id,
                    "subject": subject,
                    "type": event.type,
                    "source": event.source,
                    "payload": event.to_dict(),
                    "headers": {},
                }
            )
        async with outbox_session() as session:
            await session.execute(insert(outbox), rows)


async def _pending(db: Database) -> int:
    total = 0
    for opened in (db.global_session(), db.territory_session(TERRITORY)):
        async with opened as session:
            total += (
                await session.scalar(
                    select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
                )
                or 0
            )
    return total


def _published(relay: OutboxRelay) -> float:
    return sum(
        sample.value
        for metric in relay.metrics.published.collect()
        for sample in metric.samples
        if sample.name == "outbox_published_total"
    )


async def _stored(settings: Settings) -> int:
    async with EventBus(settings) as bus:
        return sum(info.state.messages for info in await bus.ensure_streams([TERRITORY]))


async def _drop_streams(settings: Settings) -> None:
    async with EventBus(settings) as bus:
        for info in await bus.js.streams_info():
            if info.config.name and info.config.name.startswith(
                settings.nats.namespace.upper() + "_"
            ):
                await bus.js.delete_stream(info.config.name)


async def run(events: int, batch: int, relays: int) -> float:
    run_id = "bench" + secrets.token_hex(4)
    database = f"unityplan_{run_id}"
    admin = await asyncpg.connect(_plain(ADMIN_URL))
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    settings = load_settings(
        {
            "DATABASE_URL": make_url(ADMIN_URL)
            .set(database=database)
            .render_as_string(hide_password=False),
            "NATS_URL": NATS_URL,
            "EVENTS_NAMESPACE": run_id,
            "OUTBOX_POLL_INTERVAL_SECONDS": 0.01,
        }
    )
    db = Database(settings.database)
    try:
        await migrate_global(settings)
        await create_territory(
            settings, db, code=TERRITORY, name="Bench", type=TerritoryType.COUNTRY
        )
        await _fill(db, events)
        workers = [
            OutboxRelay(settings, db, batch_size=batch, registry=CollectorRegistry())
            for _ in range(relays)
        ]
        started = time.perf_counter()
        for relay in workers:
            await relay.start()
        # Watch the relays' own counters: polling the outbox would compete with them.
        while sum(_published(relay) for relay in workers) < events:  # noqa: ASYNC110 - no event to wait on
            await asyncio.sleep(0.005)
        elapsed = time.perf_counter() - started
        if await _pending(db):
            raise SystemExit("events left unsent")
        for relay in workers:
            await relay.stop()
        stored = await _stored(settings)
        if stored != events:
            raise SystemExit(f"expected {events} events in JetStream, found {stored}")
        return events / elapsed
    finally:
        await db.dispose()
        await _drop_streams(settings)
        admin = await asyncpg.connect(_plain(ADMIN_URL))
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        await admin.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=5000)
    parser.add_argument("--batch", type=int, default=100)
    parser.add_argument("--relays", type=int, default=1)
    args = parser.parse_args()
    rate = asyncio.run(run(args.events, args.batch, args.relays))
    print(f"{args.events} events, batch {args.batch}, {args.relays} relay(s): {rate:,.0f} events/s")


if __name__ == "__main__":
    main()
