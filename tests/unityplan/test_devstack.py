"""The embedded stack: real servers on free ports, real queries, clean stop, persistent data."""

from __future__ import annotations

import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import nats
import pytest
import redis.asyncio as aioredis

from core.errors import InfrastructureError
from unityplan.devstack import EmbeddedStack, free_port, port_in_use
from unityplan.devstack.processes import ProcessRecord, wait_until

pytestmark = pytest.mark.embedded


def _gone(pgid: int) -> bool:
    """Every process of the group `pgid` has exited (zombies not yet reaped count as exited)."""
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited while we looked
        state, pgrp = fields[0], int(fields[2])
        if pgrp == pgid and state != "Z":
            return False
    return True


@pytest.fixture
def stack_root() -> Iterator[Path]:
    """A private directory for the stack's data, removed afterwards.

    Not pytest's tmp_path: as root, PostgreSQL runs as `nobody`, which must traverse every
    parent directory, and each new pytest session resets /tmp/pytest-of-<user> to mode 0700.
    """
    root = Path(tempfile.mkdtemp(prefix="unityplan-devstack-test-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def stack(stack_root: Path) -> Iterator[EmbeddedStack]:
    stack = EmbeddedStack(
        stack_root / "stack",
        postgres_port=free_port(),
        nats_port=free_port(),
        redis_port=free_port(),
    )
    try:
        yield stack
    finally:
        stack.stop()


def _ports(stack: EmbeddedStack) -> list[int]:
    return [stack.server(name).port for name in ("postgres", "nats", "redis")]


async def test_servers_answer_real_queries_stop_cleanly_and_keep_their_data(
    stack: EmbeddedStack,
) -> None:
    urls = stack.start()
    assert stack.started == ["postgres", "nats", "redis"]
    pids = [ProcessRecord.load(stack.root, name).pid for name in stack.started]  # type: ignore[union-attr]

    database = urls.database_url.replace("postgresql+asyncpg://", "postgresql://")
    conn = await asyncpg.connect(database)
    try:
        await conn.execute("CREATE TABLE smoke (id int PRIMARY KEY, note text NOT NULL)")
        await conn.execute("INSERT INTO smoke VALUES (1, 'kept across restarts')")
        assert await conn.fetchval("SELECT note FROM smoke WHERE id = 1") == "kept across restarts"
    finally:
        await conn.close()

    nc = await nats.connect(urls.nats_url)
    try:
        js = nc.jetstream()
        await js.add_stream(name="SMOKE", subjects=["smoke.>"])
        ack = await js.publish("smoke.hello", b"hello")
        assert ack.stream == "SMOKE"
        subscription = await js.pull_subscribe("smoke.>", durable="smoke-reader")
        [message] = await subscription.fetch(1, timeout=5)
        assert message.data == b"hello"
        await message.ack()
    finally:
        await nc.close()

    client = aioredis.from_url(urls.redis_url)
    try:
        await client.set("smoke", "kept")
        assert await client.get("smoke") == b"kept"
    finally:
        await client.aclose()

    assert stack.start() == urls, "starting again keeps the running servers"
    assert [ProcessRecord.load(stack.root, name).pid for name in stack.started] == pids  # type: ignore[union-attr]
    assert stack.exited() == []

    stack.stop()
    assert stack.started == []
    assert not any(port_in_use(port) for port in _ports(stack))
    assert all(_gone(pid) for pid in pids)
    assert not (stack.root / "run" / "postgres.json").exists()

    again = stack.start()
    assert again == urls
    conn = await asyncpg.connect(database)
    try:
        assert await conn.fetchval("SELECT note FROM smoke WHERE id = 1") == "kept across restarts"
    finally:
        await conn.close()
    client = aioredis.from_url(urls.redis_url)
    try:
        assert await client.get("smoke") == b"kept"
    finally:
        await client.aclose()
    nc = await nats.connect(urls.nats_url)
    try:
        info = await nc.jetstream().stream_info("SMOKE")
        assert info.state.messages == 1
    finally:
        await nc.close()


@pytest.mark.parametrize(
    ("service", "variable"),
    [("postgres", "DEV_POSTGRES_PORT"), ("nats", "DEV_NATS_PORT"), ("redis", "DEV_REDIS_PORT")],
)
def test_a_taken_port_names_the_service_the_port_and_the_variable(
    stack: EmbeddedStack, service: str, variable: str
) -> None:
    port = stack.server(service).port
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        with pytest.raises(InfrastructureError) as caught:
            stack.start([service])
    message = str(caught.value)
    assert stack.server(service).label in message
    assert str(port) in message
    assert variable in message
    assert "Traceback" not in message
    assert stack.started == []


def test_a_server_orphaned_by_a_crashed_run_is_stopped_not_in_the_way(stack_root: Path) -> None:
    root = stack_root / "stack"
    port = free_port()
    crashing = textwrap.dedent(
        f"""
        import time
        from pathlib import Path
        from unityplan.devstack import EmbeddedStack
        stack = EmbeddedStack(Path({str(root)!r}), postgres_port=1, nats_port={port}, redis_port=1)
        stack.start(["nats"])
        print("up", flush=True)
        time.sleep(120)
        """
    )
    parent = subprocess.Popen(  # noqa: S603 - the test's own interpreter
        [sys.executable, "-c", crashing], stdout=subprocess.PIPE, text=True
    )
    try:
        assert parent.stdout is not None
        assert parent.stdout.readline().strip() == "up"
    finally:
        parent.send_signal(signal.SIGKILL)  # no clean-up runs: the server is orphaned
        parent.wait(10)
    orphan = ProcessRecord.load(root, "nats")
    assert orphan is not None
    assert orphan.is_alive()

    stack = EmbeddedStack(root, postgres_port=1, nats_port=port, redis_port=1)
    try:
        urls = stack.start(["nats"])
        assert urls.nats_url.endswith(f":{port}")
        assert stack.started == ["nats"]
        assert wait_until(lambda: _gone(orphan.pid), timeout=10)
    finally:
        stack.stop()
    assert not port_in_use(port)


def test_a_detached_stack_is_reused_and_left_running_then_stopped_from_its_records(
    stack_root: Path,
) -> None:
    from unityplan.devstack import recorded_servers, stop_recorded

    root = stack_root / "stack"
    port = free_port()
    first = EmbeddedStack(root, postgres_port=1, nats_port=1, redis_port=port)
    first.start(["redis"])
    first.detach()
    [(record, alive)] = recorded_servers(root)
    assert record.detached
    assert alive

    second = EmbeddedStack(root, postgres_port=1, nats_port=1, redis_port=port)
    urls = second.start(["redis"])
    assert urls.redis_url.endswith(f":{port}/0")
    assert second.reused == ["redis"]
    assert second.started == []
    second.stop()
    assert record.is_alive(), "a reused server belongs to whoever detached it"

    assert stop_recorded(root) == ["redis"]
    assert _gone(record.pid)
    assert recorded_servers(root) == []
    assert not port_in_use(port)
