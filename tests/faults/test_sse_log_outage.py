"""SSE replay logs through Redis trouble, on an embedded Redis of this test's own: an idle
reader outlives the Redis client's 5 s socket timeout, and a stream carries on, losing nothing,
across a Redis restart."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import pytest

from core.cache import create_redis
from core.config import RedisSettings
from router.subscriptions.replay import ReplayLogs
from unityplan.devstack import EmbeddedStack, free_port


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[EmbeddedStack]:
    stack = EmbeddedStack(
        tmp_path, postgres_port=free_port(), nats_port=free_port(), redis_port=free_port()
    )
    stack.start(["redis"])
    try:
        yield stack
    finally:
        stack.stop()


def _logs(stack: EmbeddedStack) -> ReplayLogs:
    settings = RedisSettings.model_validate({"REDIS_URL": stack.urls().redis_url})
    return ReplayLogs(lambda: create_redis(settings), "faults:", retention_seconds=30.0)


async def _upstream(queue: asyncio.Queue[bytes | None]) -> AsyncIterator[bytes]:
    while (item := await queue.get()) is not None:
        yield item


async def _read(follow: AsyncIterator[tuple[str, bytes]], into: list[bytes]) -> None:
    async for _, payload in follow:
        into.append(payload)


async def _stream(
    logs: ReplayLogs, keepalive_seconds: float
) -> tuple[asyncio.Queue[bytes | None], list[bytes], asyncio.Task[None]]:
    """A logged stream being read: its upstream's queue, what the reader got, the reader."""
    queue: asyncio.Queue[bytes | None] = asyncio.Queue()
    token = await logs.record(_upstream(queue), "s1", lambda: None)
    received: list[bytes] = []
    follow = logs.follow(token, "0", "s1", keepalive_seconds)
    return queue, received, asyncio.create_task(_read(follow, received))


async def test_an_idle_reader_outlives_the_redis_socket_timeout(
    redis_server: EmbeddedStack,
) -> None:
    logs = _logs(redis_server)
    # A keep-alive interval over the client's 5 s socket timeout, as the router's default 12 s.
    queue, received, reader = await _stream(logs, 12.0)
    try:
        await asyncio.sleep(7)  # idle past the socket timeout
        assert not reader.done(), reader.exception() if reader.done() else None
        await queue.put(b'{"n":1}')
        await _eventually(lambda: received == [b'{"n":1}'])
        await queue.put(None)  # the upstream completes: so does the reader, cleanly
        await asyncio.wait_for(reader, 10)
    finally:
        reader.cancel()
        await logs.close()


async def test_a_stream_carries_on_across_a_redis_restart(redis_server: EmbeddedStack) -> None:
    logs = _logs(redis_server)
    queue, received, reader = await _stream(logs, 1.0)
    try:
        for n in range(5):
            await queue.put(f'{{"n":{n}}}'.encode())
        await _eventually(lambda: len(received) == 5)
        redis_server.stop()
        for n in range(5, 10):  # sent while Redis is down
            await queue.put(f'{{"n":{n}}}'.encode())
        await asyncio.sleep(1)
        redis_server.start(["redis"])
        for n in range(10, 15):
            await queue.put(f'{{"n":{n}}}'.encode())
        await _eventually(lambda: len(received) == 15)
        assert received == [f'{{"n":{n}}}'.encode() for n in range(15)]
        assert not reader.done()
    finally:
        reader.cancel()
        await logs.close()


async def _eventually(check: object, within: float = 20.0) -> None:
    assert callable(check)
    deadline = asyncio.get_running_loop().time() + within
    while not check():
        assert asyncio.get_running_loop().time() < deadline, "timed out"
        await asyncio.sleep(0.05)


async def test_a_stream_carries_on_after_redis_comes_back_empty(
    redis_server: EmbeddedStack,
) -> None:
    import redis.asyncio as aioredis

    logs = _logs(redis_server)
    queue, received, reader = await _stream(logs, 1.0)
    try:
        await queue.put(b'{"n":0}')
        await _eventually(lambda: len(received) == 1)
        client = aioredis.from_url(redis_server.urls().redis_url)
        try:
            await client.flushall()  # what a restart without persistence leaves
        finally:
            await client.aclose()
        await asyncio.sleep(12)  # longer than a reader waits for a vanished log's writer
        assert not reader.done(), reader.exception() if reader.done() else None
        await queue.put(b'{"n":1}')
        await _eventually(lambda: received == [b'{"n":0}', b'{"n":1}'])
    finally:
        reader.cancel()
        await logs.close()
