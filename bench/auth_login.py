"""Auth subgraph: logins per second with the production Argon2id parameters, and the latency of
`me` with a valid token.

Creates a scratch database and Redis key prefix, runs the auth service as its own process
(`unityplan serve auth`, as in production) on a free port, registers users, then
  1. logs them in from `--concurrency` clients for `--seconds` seconds (logins/s),
  2. sends `--me-requests` `{ me { id username } }` queries with valid tokens (p50/p99),
and removes what it created.

    .venv/bin/python bench/auth_login.py [--users 20] [--seconds 10] [--concurrency 4]

Servers: TEST_POSTGRES_URL / TEST_REDIS_URL, else the local defaults (127.0.0.1:5432, :6379).
Not a test: figures depend on the machine; see the README for recorded ones.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from core.config import Settings, load_settings
from core.db import Database
from core.db.migrations import migrate_global
from core.db.provisioning import create_territory
from subgraphs.auth.bootstrap import issue_invitation
from subgraphs.auth.runtime import AuthRuntime

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
TERRITORY = "bench"
PASSWORD = "bench passphrase 2026"  # noqa: S105 - benchmark data

REGISTER = """
mutation R($input: RegisterInput!) { register(input: $input) { user { id } } }
"""
LOGIN = """
mutation L($input: LoginInput!) { login(input: $input) { accessToken } }
"""
ME = "{ me { id username } }"


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(database: str, prefix: str, devstack: str, port: int) -> dict[str, str]:
    url = make_url(ADMIN_URL).set(database=database).render_as_string(hide_password=False)
    return {
        "APP_ENV": "test",
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": prefix,
        "DEVSTACK_DIR": devstack,
        "AUTH_PORT": str(port),
        "LOG_LEVEL": "WARNING",
        # The bench's clients share one address; keep the per-IP limit out of the measurement.
        "LOGIN_FAILURES_PER_IP": "1000000",
    }


async def _prepare(settings: Settings, users: int) -> list[str]:
    await migrate_global(settings)
    db = Database(settings.database)
    from core.cache import create_redis

    redis = create_redis(settings.redis)
    try:
        await create_territory(settings, db, code=TERRITORY, name="Bench", type="country")
        runtime = AuthRuntime.create(settings, db, redis)
        invitation = await issue_invitation(
            runtime, TERRITORY, creator_id=None, max_uses=max(2, users)
        )
    finally:
        await redis.aclose()
        await db.dispose()
    return [invitation.token]


async def _wait_healthy(client: httpx.AsyncClient, process: asyncio.subprocess.Process) -> None:
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        if process.returncode is not None:
            raise RuntimeError("the auth service exited during start-up")
        try:
            if (await client.get("/health")).status_code == 200:
                return
        except httpx.TransportError:
            pass
        await asyncio.sleep(0.2)
    raise RuntimeError("the auth service did not become healthy within 30 s")


async def _post(
    client: httpx.AsyncClient, query: str, variables: dict[str, object], token: str | None = None
) -> dict[str, object]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    body: dict[str, object] = response.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL error: {body['errors']}")
    return body


async def _measure(base_url: str, invitation: str, args: argparse.Namespace) -> None:
    async with httpx.AsyncClient(base_url=base_url, timeout=30) as client:
        names = [f"bench_{i}_{secrets.token_hex(3)}" for i in range(args.users)]
        for name in names:
            await _post(
                client,
                REGISTER,
                {
                    "input": {
                        "territoryCode": TERRITORY,
                        "invitationToken": invitation,
                        "username": name,
                        "password": PASSWORD,
                    }
                },
            )

        logins = 0
        stop_at = time.monotonic() + args.seconds
        tokens: list[str] = []

        async def login_loop(worker: int) -> None:
            nonlocal logins
            index = worker
            while time.monotonic() < stop_at:
                body = await _post(
                    client,
                    LOGIN,
                    {
                        "input": {
                            "username": names[index % len(names)],
                            "password": PASSWORD,
                        }
                    },
                )
                data = body["data"]
                assert isinstance(data, dict)
                tokens.append(data["login"]["accessToken"])
                logins += 1
                index += args.concurrency

        started = time.monotonic()
        await asyncio.gather(*(login_loop(w) for w in range(args.concurrency)))
        elapsed = time.monotonic() - started
        print(
            f"logins: {logins} in {elapsed:.1f} s = {logins / elapsed:.1f} logins/s "
            f"({args.concurrency} concurrent clients, Argon2id production parameters)"
        )

        latencies: list[float] = []

        async def me_loop(worker: int) -> None:
            for i in range(worker, args.me_requests, args.concurrency):
                begin = time.perf_counter()
                await _post(client, ME, {}, token=tokens[i % len(tokens)])
                latencies.append(time.perf_counter() - begin)

        await asyncio.gather(*(me_loop(w) for w in range(args.concurrency)))
        latencies.sort()
        p50 = statistics.median(latencies) * 1000
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] * 1000
        print(
            f"me: {len(latencies)} requests, p50 {p50:.1f} ms, p99 {p99:.1f} ms "
            f"({args.concurrency} concurrent clients)"
        )


async def main(args: argparse.Namespace) -> None:
    database = f"unityplan_bench_{secrets.token_hex(4)}"
    prefix = f"bench{secrets.token_hex(4)}:"
    admin = await asyncpg.connect(_plain(ADMIN_URL))
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    port = _free_port()
    process: asyncio.subprocess.Process | None = None
    with tempfile.TemporaryDirectory() as devstack:
        environment = _environment(database, prefix, devstack, port)
        try:
            settings = load_settings(environment)
            [invitation] = await _prepare(settings, args.users)
            process = await asyncio.create_subprocess_exec(
                str(Path(sys.executable).with_name("unityplan")),
                *("serve", "auth", "--port", str(port)),
                env={**os.environ, **environment},
            )
            base_url = f"http://127.0.0.1:{port}"
            async with httpx.AsyncClient(base_url=base_url) as probe:
                await _wait_healthy(probe, process)
            await _measure(base_url, invitation, args)
        finally:
            if process is not None and process.returncode is None:
                process.terminate()
                await asyncio.wait_for(process.wait(), 15)
            admin = await asyncpg.connect(_plain(ADMIN_URL))
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()
            from redis.asyncio import Redis

            redis = Redis.from_url(REDIS_URL)
            keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=500)]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()
    print(json.dumps({"cpus": os.cpu_count()}))


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--me-requests", type=int, default=2000)
    asyncio.run(main(parser.parse_args()))
