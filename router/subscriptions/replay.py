"""SSE resumption: every SSE subscription is written to a short-lived Redis stream (its log),
and the HTTP response reads from the log, so a client reconnecting with `Last-Event-ID`, to any
router replica, gets what it missed, once and in order, within the retention window."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import AsyncIterator, Callable
from typing import Any

import orjson
from redis.asyncio import Redis

from router.subscriptions.service import StreamError

log = logging.getLogger("unityplan.router.subscriptions")

_PAYLOAD, _COMPLETE, _ERRORS = b"p", b"c", b"e"


def _gone() -> StreamError:
    return StreamError(
        [
            {
                "message": "The stream to resume has ended or is older than the retention window",
                "extensions": {"code": "STREAM_NOT_RESUMABLE"},
            }
        ]
    )


class ReplayLogs:
    """Writers (one per SSE subscription, where it started) and readers (the responses)."""

    def __init__(
        self,
        redis: Callable[[], Redis],
        prefix: str,
        *,
        retention_seconds: float = 120.0,
        max_events: int = 1000,
    ) -> None:
        self._redis_factory = redis
        self._redis: Redis | None = None
        self.prefix = f"{prefix}sse:"
        self.retention_seconds = retention_seconds
        self.max_events = max_events
        self._writers: set[asyncio.Task[None]] = set()

    def redis(self) -> Redis:
        if self._redis is None:
            self._redis = self._redis_factory()
        return self._redis

    def _keys(self, token: str) -> tuple[str, str, str]:
        base = self.prefix + token
        return base, base + ":reader", base + ":session"

    async def record(
        self, events: AsyncIterator[bytes], session: str, on_end: Callable[[], None]
    ) -> str:
        """Start writing `events` to a new log; returns its token. `on_end` runs when the
        writer stops (the upstream ended, or no reader came back within the retention)."""
        token = secrets.token_urlsafe(16)
        key, reader, owner = self._keys(token)
        ttl = int(self.retention_seconds) + 1
        redis = self.redis()
        await redis.set(reader, b"1", ex=ttl)
        # The writer's retention travels with the log: a reader on a replica configured
        # otherwise keeps the writer alive exactly as long as the writer expects.
        await redis.set(owner, f"{session}\n{ttl}".encode(), ex=ttl)
        task = asyncio.create_task(self._write(key, reader, owner, events, on_end))
        self._writers.add(task)
        task.add_done_callback(self._writers.discard)
        return token

    async def _write(
        self,
        key: str,
        reader: str,
        owner: str,
        events: AsyncIterator[bytes],
        on_end: Callable[[], None],
    ) -> None:
        redis, ttl = self.redis(), int(self.retention_seconds) + 1
        consume = asyncio.create_task(self._consume(key, owner, events))
        watchdog = asyncio.create_task(self._while_read(reader))
        entry: dict[Any, Any] = {_COMPLETE: b""}
        try:
            await asyncio.wait({consume, watchdog}, return_when=asyncio.FIRST_COMPLETED)
            if consume.done() and not consume.cancelled():
                failure = consume.exception()
                if isinstance(failure, StreamError):
                    entry = {_ERRORS: orjson.dumps(failure.errors)}
                elif failure is not None:
                    log.error("SSE log writer failed: %s", failure)
        finally:
            for task in (consume, watchdog):
                task.cancel()
            await asyncio.gather(consume, watchdog, return_exceptions=True)
            with contextlib.suppress(Exception):
                await events.aclose()  # type: ignore[attr-defined]
            with contextlib.suppress(Exception):
                await redis.xadd(key, entry, maxlen=self.max_events)
                await redis.expire(key, ttl)
            on_end()

    async def _consume(self, key: str, owner: str, events: AsyncIterator[bytes]) -> None:
        redis, ttl = self.redis(), int(self.retention_seconds) + 1
        async for payload in events:
            await redis.xadd(key, {_PAYLOAD: payload}, maxlen=self.max_events)
            await redis.expire(key, ttl)
            await redis.expire(owner, ttl)

    async def _while_read(self, reader: str) -> None:
        """Returns once no reader refreshed the log's reader key within the retention."""
        while await self.redis().exists(reader):  # noqa: ASYNC110 - the key lives in Redis
            await asyncio.sleep(min(self.retention_seconds / 4, 5.0))

    async def follow(
        self, token: str, after: str, session: str, keepalive_seconds: float
    ) -> AsyncIterator[tuple[str, bytes]]:
        """(event id, payload) from the log after entry `after` ("0" for all), while keeping
        the writer alive; ends at the log's end, raises `StreamError` for a recorded error."""
        key, reader, owner = self._keys(token)
        redis = self.redis()
        found = await redis.get(owner)
        text = found.decode() if isinstance(found, bytes) else str(found)
        recorded_session, _, recorded_ttl = text.partition("\n")
        if found is None or recorded_session != session:
            raise _gone()
        ttl = int(recorded_ttl) if recorded_ttl.isdigit() else int(self.retention_seconds) + 1
        position = after
        block = max(int(keepalive_seconds * 1000), 100)
        while True:
            await redis.set(reader, b"1", ex=ttl)
            answer: Any = await redis.xread({key: position}, count=100, block=block)
            for _, entries in answer or ():
                for entry_id, fields in entries:
                    position = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                    if _PAYLOAD in fields:
                        yield f"{token}:{position}", fields[_PAYLOAD]
                    elif _ERRORS in fields:
                        raise StreamError(orjson.loads(fields[_ERRORS]))
                    else:
                        return
            if not answer and not await redis.exists(key, owner):
                raise _gone()

    async def close(self) -> None:
        """Stop every writer: their logs end with `complete` (shutdown)."""
        for task in list(self._writers):
            task.cancel()
        await asyncio.gather(*self._writers, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()
