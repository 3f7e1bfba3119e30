"""SSE resumption: every SSE subscription is written to a short-lived Redis stream (its log),
and the HTTP response reads from the log, so a client reconnecting with `Last-Event-ID`, to any
router replica, gets what it missed, once and in order, within the retention window."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from functools import partial
from typing import Any

import orjson
from redis.asyncio import Redis
from redis.exceptions import RedisError

from router.subscriptions.service import StreamError

log = logging.getLogger("unityplan.router.subscriptions")

_PAYLOAD, _COMPLETE, _ERRORS = b"p", b"c", b"e"
# XREAD blocks at most this long, well under the Redis client's socket timeout (5 s).
_MAX_BLOCK_MS = 2000
# Waiting out Redis: first retry after this long, doubling up to the maximum.
_RETRY_FIRST_SECONDS = 0.2
_RETRY_MAX_SECONDS = 2.0
# A log that vanished (Redis restarted empty) is given this long for its writer to restore it.
_LOG_LOST_GRACE_SECONDS = 10.0


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
        # Each live writer's owner record, written again if Redis restarted empty.
        self._owners: dict[str, bytes] = {}

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
        record = f"{session}\n{ttl}".encode()
        await redis.set(owner, record, ex=ttl)
        self._owners[owner] = record
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
        ttl = int(self.retention_seconds) + 1
        consume = asyncio.create_task(self._consume(key, owner, events))
        watchdog = asyncio.create_task(self._while_read(reader, owner))
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
                async with asyncio.timeout(self.retention_seconds):
                    await self._retrying(lambda: self._end(key, ttl, entry))
            self._owners.pop(owner, None)
            on_end()

    async def _end(self, key: str, ttl: int, entry: dict[Any, Any]) -> None:
        redis = self.redis()
        await redis.xadd(key, entry, maxlen=self.max_events)
        await redis.expire(key, ttl)

    async def _consume(self, key: str, owner: str, events: AsyncIterator[bytes]) -> None:
        ttl = int(self.retention_seconds) + 1
        async for payload in events:
            # Through a Redis outage or restart the event waits here (the upstream's mailbox
            # holds the next ones) and the log, with its owner record, is written again after.
            await self._retrying(partial(self._append, key, owner, ttl, payload))

    async def _append(self, key: str, owner: str, ttl: int, payload: bytes) -> None:
        redis = self.redis()
        async with redis.pipeline(transaction=False) as pipe:
            pipe.xadd(key, {_PAYLOAD: payload}, maxlen=self.max_events)
            pipe.expire(key, ttl)
            pipe.expire(owner, ttl)
            _, _, owner_kept = await pipe.execute()
        if not owner_kept:  # Redis restarted empty: the owner record goes back first
            restored = self._owners.get(owner)
            if restored is not None:
                await redis.set(owner, restored, ex=ttl)

    async def _retrying(self, call: Callable[[], Awaitable[None]]) -> None:
        """`call` until Redis answers (backing off up to `_RETRY_MAX_SECONDS`)."""
        delay = _RETRY_FIRST_SECONDS
        while True:
            try:
                await call()
                return
            except RedisError as exc:
                log.warning("SSE log: Redis unavailable, retrying in %.1f s: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_SECONDS)

    async def _while_read(self, reader: str, owner: str) -> None:
        """Returns once no reader refreshed the log's reader key within the retention. A
        Redis outage does not count: after one, readers get a whole retention to come back.
        A Redis that came back empty gets the log's owner record again, so readers wait for
        the next event instead of calling the log lost."""
        ttl = int(self.retention_seconds) + 1
        interval = min(self.retention_seconds / 4, 5.0)
        while True:
            try:
                async with self.redis().pipeline(transaction=False) as pipe:
                    pipe.exists(reader)
                    record = self._owners.get(owner)
                    if record is not None:
                        pipe.set(owner, record, ex=ttl, nx=True)
                    read, *_ = await pipe.execute()
                if not read:
                    return
            except RedisError:
                await asyncio.sleep(interval)
                await self._retrying(lambda: self._touch(reader, ttl))
                continue
            await asyncio.sleep(interval)

    async def _touch(self, reader: str, ttl: int) -> None:
        await self.redis().set(reader, b"1", ex=ttl)

    async def follow(
        self, token: str, after: str, session: str, keepalive_seconds: float
    ) -> AsyncIterator[tuple[str, bytes]]:
        """(event id, payload) from the log after entry `after` ("0" for all), while keeping
        the writer alive; ends at the log's end, raises `StreamError` for a recorded error,
        and `STREAM_NOT_RESUMABLE` when the log is gone (at once for an unknown log; after
        `_LOG_LOST_GRACE_SECONDS` for one that vanished, which a writer restores after a
        Redis restart). Redis errors are waited out: the response's keep-alives go on."""
        key, reader, owner = self._keys(token)
        found = await self._owner_record(owner)
        text = found.decode() if isinstance(found, bytes) else str(found)
        recorded_session, _, recorded_ttl = text.partition("\n")
        if found is None or recorded_session != session:
            raise _gone()
        ttl = int(recorded_ttl) if recorded_ttl.isdigit() else int(self.retention_seconds) + 1
        position = after
        # Shorter than the Redis client's socket timeout, whatever the keep-alive interval.
        block = max(min(int(keepalive_seconds * 1000), _MAX_BLOCK_MS), 100)
        missing_since: float | None = None
        delay = _RETRY_FIRST_SECONDS
        while True:
            try:
                redis = self.redis()
                await redis.set(reader, b"1", ex=ttl)
                answer: Any = await redis.xread({key: position}, count=100, block=block)
                present = bool(answer) or bool(await redis.exists(key, owner))
            except RedisError as exc:
                log.warning("SSE log: Redis unavailable, reading again in %.1f s: %s", delay, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_SECONDS)
                continue
            delay = _RETRY_FIRST_SECONDS
            for _, entries in answer or ():
                for entry_id, fields in entries:
                    position = entry_id.decode() if isinstance(entry_id, bytes) else str(entry_id)
                    if _PAYLOAD in fields:
                        yield f"{token}:{position}", fields[_PAYLOAD]
                    elif _ERRORS in fields:
                        raise StreamError(orjson.loads(fields[_ERRORS]))
                    else:
                        return
            if present:
                missing_since = None
                continue
            now = time.monotonic()
            missing_since = missing_since or now
            if now - missing_since > _LOG_LOST_GRACE_SECONDS:
                raise _gone()

    async def _owner_record(self, owner: str) -> Any:
        delay = _RETRY_FIRST_SECONDS
        while True:
            try:
                return await self.redis().get(owner)
            except RedisError:
                await asyncio.sleep(delay)
                delay = min(delay * 2, _RETRY_MAX_SECONDS)

    async def close(self) -> None:
        """Stop every writer: their logs end with `complete` (shutdown)."""
        for task in list(self._writers):
            task.cancel()
        await asyncio.gather(*self._writers, return_exceptions=True)
        if self._redis is not None:
            await self._redis.aclose()
