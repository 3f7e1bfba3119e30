"""Test infrastructure: real PostgreSQL, NATS and Redis, isolated per test session.

Servers come from TEST_POSTGRES_URL / TEST_NATS_URL / TEST_REDIS_URL, else the ones running on
the standard local ports, else the embedded stack started here. Each session (each xdist
worker) gets its own databases, its own NATS namespace and its own Redis key prefix, and removes
them at the end, so parallel runs never collide.
"""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import tempfile
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from core.config import Settings, load_settings
from core.events import drop_scratch_namespace

# The e2e and fault tests import their stack's helpers before naming the module a plugin: its
# asserts are rewritten all the same (and pytest does not warn that it could not).
pytest.register_assert_rewrite("tests.e2e.stack", "tests.faults.stack")


@dataclass(frozen=True)
class Servers:
    """Server-level URLs (not yet a database of ours)."""

    postgres_admin_url: str  # postgresql://user@host:port/postgres
    nats_url: str
    redis_url: str


@dataclass(frozen=True)
class TestDatabases:
    """The databases this session owns: the default pod and a second pod on the same server."""

    default_url: str
    second_pod_url: str


def _reachable(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=0.5):
            return True
    except OSError:
        return False


@pytest.fixture(scope="session")
def servers() -> Iterator[Servers]:
    # TEST_EMBEDDED_STACK=1 ignores servers on the standard ports (to exercise the fallback).
    local = os.environ.get("TEST_EMBEDDED_STACK") != "1"
    postgres = os.environ.get("TEST_POSTGRES_URL") or (
        "postgresql://postgres@127.0.0.1:5432/postgres"
        if local and _reachable("127.0.0.1", 5432)
        else ""
    )
    nats = os.environ.get("TEST_NATS_URL") or (
        "nats://127.0.0.1:4222" if local and _reachable("127.0.0.1", 4222) else ""
    )
    redis = os.environ.get("TEST_REDIS_URL") or (
        "redis://127.0.0.1:6379/0" if local and _reachable("127.0.0.1", 6379) else ""
    )
    stack = None
    if not (postgres and nats and redis):
        from unityplan.devstack import EmbeddedStack, free_port

        # Not under pytest's tmp dir: a later pytest session resets it to mode 700, and the
        # embedded PostgreSQL runs as an unprivileged user when the tests run as root.
        root = Path(tempfile.mkdtemp(prefix="unityplan-test-stack-"))
        stack = EmbeddedStack(
            root,
            postgres_port=free_port(),
            nats_port=free_port(),
            redis_port=free_port(),
        )
        wanted = [
            name
            for name, url in (("postgres", postgres), ("nats", nats), ("redis", redis))
            if not url
        ]
        urls = stack.start(wanted)
        postgres = postgres or urls.postgres_admin_url
        nats = nats or urls.nats_url
        redis = redis or urls.redis_url
    try:
        yield Servers(postgres_admin_url=postgres, nats_url=nats, redis_url=redis)
    finally:
        if stack is not None:
            stack.stop()
            shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def run_id() -> str:
    """Unique per test session (per xdist worker): names every resource the session creates."""
    return "t" + secrets.token_hex(5)


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _asyncpg(url: str, database: str) -> str:
    return (
        make_url(url)
        .set(drivername="postgresql+asyncpg", database=database)
        .render_as_string(hide_password=False)
    )


@pytest.fixture(scope="session")
async def test_databases(servers: Servers, run_id: str) -> AsyncIterator[TestDatabases]:
    names = [f"unityplan_{run_id}_a", f"unityplan_{run_id}_b"]
    admin = await asyncpg.connect(_plain(servers.postgres_admin_url))
    try:
        for name in names:
            await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    try:
        yield TestDatabases(
            default_url=_asyncpg(servers.postgres_admin_url, names[0]),
            second_pod_url=_asyncpg(servers.postgres_admin_url, names[1]),
        )
    finally:
        admin = await asyncpg.connect(_plain(servers.postgres_admin_url))
        try:
            for name in names:
                await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await admin.close()


SECOND_POD = "pod-b"


@pytest.fixture(scope="session")
def settings(
    servers: Servers,
    test_databases: TestDatabases,
    run_id: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Settings:
    """Settings of the stack under test: this session's databases, namespace and key prefix."""
    import json

    return load_settings(
        {
            "APP_ENV": "test",
            "DATABASE_URL": test_databases.default_url,
            "POD_DATABASE_URLS": json.dumps({SECOND_POD: test_databases.second_pod_url}),
            "TERRITORY_CACHE_TTL_SECONDS": 0.5,
            "NATS_URL": servers.nats_url,
            "EVENTS_NAMESPACE": run_id,
            "OUTBOX_POLL_INTERVAL_SECONDS": 0.05,
            "OUTBOX_MAX_BACKOFF_SECONDS": 0.5,
            "REDIS_URL": servers.redis_url,
            "REDIS_KEY_PREFIX": f"{run_id}:",
            "DEVSTACK_DIR": str(tmp_path_factory.mktemp("devstack")),
            "LOG_FORMAT": "console",
        }
    )


@pytest.fixture(scope="session", autouse=True)
async def _cleanup_shared_servers(
    servers: Servers, run_id: str, settings: Settings
) -> AsyncIterator[None]:
    """Mark this session's session denylist complete (what a running auth subgraph does;
    tests of the refill clear the mark themselves), and at the end remove this session's NATS
    streams and Redis keys from the shared servers."""
    import redis.asyncio as aioredis

    from core.security import SessionRegistry

    client = aioredis.from_url(servers.redis_url)
    try:
        await SessionRegistry.from_settings(client, settings).restore([])
    finally:
        await client.aclose()
    yield

    try:
        await drop_scratch_namespace(servers.nats_url, run_id)
    except Exception as exc:
        print(f"NATS cleanup skipped: {exc}")
    client = aioredis.from_url(servers.redis_url)
    try:
        keys = [key async for key in client.scan_iter(match=f"{run_id}:*", count=500)]
        if keys:
            await client.delete(*keys)
    finally:
        await client.aclose()
