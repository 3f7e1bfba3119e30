"""Idle cost per territory: N territories on one pod, the services running, nothing happening.

Creates a scratch database, Redis key prefix and NATS namespace, provisions `--territories`
territories (timing each creation), runs the auth, user and router services as their own
processes (`unityplan serve ...`, as in production), lets them settle, then measures over
`--seconds`: the CPU of the three service processes, the CPU of the PostgreSQL backends serving
the scratch database, and that database's transactions per second. Then it creates one more
territory while the services run (timed) and registers a member there through the router, and
waits for the user service's consumer to handle the registration (no restart). Removes
everything it created.

    .venv/bin/python bench/territories.py [--territories 1000] [--seconds 30] [--parallel 1]

Servers: TEST_POSTGRES_URL / TEST_NATS_URL / TEST_REDIS_URL, else the local defaults.
Not a test: figures depend on the machine (and on what else runs on it: the load average is
printed); see docs/operations.md for recorded ones.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import secrets
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url
from subscriptions import (  # bench/ is the script's directory
    ADMIN_URL,
    _backends,
    _cpu_of,
    _environment,
    _free_port,
    _graphql,
    _plain,
    _stop_and_remove,
    _wait_healthy,
)

from core.cache import create_redis
from core.config import Settings, load_settings
from core.db import Database
from core.db.migrations import migrate_global
from core.db.provisioning import create_territory
from subgraphs.auth.bootstrap import issue_invitation
from subgraphs.auth.runtime import AuthRuntime

REGISTER = """
mutation R($input: RegisterInput!) { register(input: $input) { user { id } } }
"""


async def _provision(settings: Settings, count: int, parallel: int) -> list[float]:
    """Create `count` territories, `parallel` at a time; the seconds each creation took."""
    await migrate_global(settings)
    db = Database(settings.database)
    durations: list[float] = []
    codes = iter([f"bt{n:05d}" for n in range(count)])
    started = time.monotonic()

    async def worker() -> None:
        for code in codes:
            began = time.monotonic()
            await create_territory(settings, db, code=code, name=code, type="country")
            durations.append(time.monotonic() - began)
            if len(durations) % 100 == 0:
                print(f"  {len(durations)} territories in {time.monotonic() - started:.0f} s")

    try:
        await asyncio.gather(*(worker() for _ in range(parallel)))
    finally:
        await db.dispose()
    return durations


async def _transactions(admin: asyncpg.Connection, database: str) -> int:
    # The statistics collector flushes every half second or so: read it fresh.
    await admin.execute("SELECT pg_stat_clear_snapshot()")
    row = await admin.fetchrow(
        "SELECT xact_commit + xact_rollback AS n FROM pg_stat_database WHERE datname = $1",
        database,
    )
    return int(row["n"]) if row is not None else 0


async def _measure_idle(
    admin: asyncpg.Connection, database: str, services: list[int], seconds: float
) -> None:
    backends = await _backends(admin, database)
    cpu_services, cpu_postgres = _cpu_of(services), _cpu_of(backends)
    transactions, began = await _transactions(admin, database), time.monotonic()
    await asyncio.sleep(seconds)
    elapsed = time.monotonic() - began
    transactions = await _transactions(admin, database) - transactions
    # Backends that appeared meanwhile count from zero: a small over-estimate, never under.
    cpu_postgres = _cpu_of(await _backends(admin, database)) - cpu_postgres
    cpu_services = _cpu_of(services) - cpu_services
    print(
        f"idle over {elapsed:.0f} s: services' CPU {100 * cpu_services / elapsed:.1f}% of a core, "
        f"PostgreSQL CPU {100 * cpu_postgres / elapsed:.1f}%, "
        f"{transactions / elapsed:.1f} transactions/s"
    )


async def _new_territory_flows(
    settings: Settings, router: str, admin_url: str, database: str
) -> None:
    """Create a territory while the services run and see a registration there consumed."""
    db = Database(settings.database)
    redis = create_redis(settings.redis)
    code = f"bt-new-{secrets.token_hex(2)}"
    try:
        began = time.monotonic()
        await create_territory(settings, db, code=code, name="Newcomer", type="country")
        created = time.monotonic() - began
        invitation = await issue_invitation(
            AuthRuntime.create(settings, db, redis), code, creator_id=None, max_uses=10
        )
    finally:
        await redis.aclose()
        await db.dispose()
    async with httpx.AsyncClient(base_url=router, timeout=60) as client:
        registered_at = time.monotonic()
        data = await _graphql(
            client,
            REGISTER,
            {
                "input": {
                    "territoryCode": code,
                    "invitationToken": invitation.token,
                    "username": f"bench_{secrets.token_hex(6)}",
                    "password": "bench passphrase 2026",
                }
            },
        )
    user_id = data["register"]["user"]["id"]
    schema = "territory_" + code.replace("-", "_")
    connection = await asyncpg.connect(_plain(str(make_url(admin_url).set(database=database))))
    try:
        deadline = time.monotonic() + 60
        consumed = None
        while time.monotonic() < deadline:
            found = await connection.fetchval(
                f'SELECT count(*) FROM "{schema}".processed_events '  # noqa: S608 - our schema
                "WHERE consumer = $1",
                f"user-profiles-registered-{code}",
            )
            if found:
                consumed = time.monotonic() - registered_at
                break
            await asyncio.sleep(0.05)
    finally:
        await connection.close()
    outcome = f"consumed {consumed:.2f} s after the registration" if consumed else "NOT consumed"
    print(
        f"a territory created while running: {created:.2f} s to create; "
        f"its first member ({user_id}) {outcome}"
    )


async def main(args: argparse.Namespace) -> None:
    database = f"unityplan_bench_{secrets.token_hex(4)}"
    run = f"benchter{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_plain(ADMIN_URL))
    await admin.execute(f'CREATE DATABASE "{database}"')
    ports = {name: _free_port() for name in ("auth", "user", "router")}
    processes: list[asyncio.subprocess.Process] = []
    unityplan = str(Path(sys.executable).with_name("unityplan"))
    print(f"load average before: {os.getloadavg()[0]:.2f}")
    with tempfile.TemporaryDirectory() as devstack:
        environment = _environment(database, run, devstack, ports)
        settings = load_settings(environment)
        try:
            durations = await _provision(settings, args.territories, args.parallel)
            print(
                f"{len(durations)} territories created ({args.parallel} at a time): "
                f"{statistics.median(durations):.2f} s each (median), max {max(durations):.2f} s"
            )
            for service in ("auth", "user", "router"):
                process = await asyncio.create_subprocess_exec(
                    unityplan,
                    "serve",
                    service,
                    "--port",
                    str(ports[service]),
                    env={**os.environ, **environment},
                )
                processes.append(process)
                await _wait_healthy(f"http://127.0.0.1:{ports[service]}", process, service)
            print(f"services ready; settling for {args.settle:.0f} s")
            await asyncio.sleep(args.settle)
            print(f"load average: {os.getloadavg()[0]:.2f}")
            await _measure_idle(admin, database, [p.pid for p in processes], args.seconds)
            await _new_territory_flows(
                settings, f"http://127.0.0.1:{ports['router']}", ADMIN_URL, database
            )
        finally:
            await admin.close()
            await _stop_and_remove(processes, database, run, within=60)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--territories", type=int, default=1000)
    parser.add_argument("--seconds", type=float, default=30.0)
    parser.add_argument("--settle", type=float, default=20.0)
    parser.add_argument("--parallel", type=int, default=1)
    asyncio.run(main(parser.parse_args()))
