"""The in-process copy of the territory registry, dropped whenever the registry changes.

A trigger on `global.territories` sends a NOTIFY on every change; each process listens and
forgets its copy at once. The TTL (TERRITORY_CACHE_TTL_SECONDS) is the safety net for the
moments the listening connection is down: while it listens, an expired copy is still answered
from and read again in the background, so no request waits for the whole registry (thousands
of territories) to load.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable
from typing import Any

import asyncpg
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from core.db.registry import REGISTRY_CHANNEL, find_territory, load_registry
from core.db.territories import Territory

log = logging.getLogger(__name__)

# Lookups of codes that are not registered are remembered too, so a client cycling through
# made-up codes costs one query per code per TTL, not one per request. Bounded all the same.
MAX_REMEMBERED_MISSES = 10_000

LISTENER_CONNECT_TIMEOUT_SECONDS = 5.0

_NEVER = float("-inf")


class TerritoryRegistryCache:
    """Registry snapshot with change notifications, a TTL and remembered misses."""

    def __init__(self, engine: Callable[[], AsyncEngine], ttl_seconds: float) -> None:
        self._engine = engine
        self._ttl = ttl_seconds
        self._snapshot: dict[str, Territory] | None = None
        self._loaded_at = _NEVER
        self._misses: dict[str, float] = {}
        # Bumped by every invalidation: a read that overlapped one is not trusted as fresh.
        self._generation = 0
        self._listener: asyncpg.Connection | None = None
        self._listen_attempted_at = _NEVER
        self._lock = asyncio.Lock()
        self._refreshing: asyncio.Task[None] | None = None
        # Resolved by the next change, for those waiting for one.
        self._next_change: asyncio.Future[None] | None = None

    @property
    def listening(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    @property
    def generation(self) -> int:
        """Moves on with every change this process hears of (or makes)."""
        return self._generation

    def invalidate(self) -> None:
        self._snapshot = None
        self._loaded_at = _NEVER
        self._misses.clear()
        self._generation += 1
        waiting, self._next_change = self._next_change, None
        if waiting is not None and not waiting.done():
            waiting.set_result(None)

    async def changed_since(self, generation: int, within: float) -> None:
        """Return once the registry changed after `generation` was read, or after `within`
        seconds (changes are heard while listening; the caller looks anyway then)."""
        if generation != self._generation:
            return
        if self._next_change is None:
            self._next_change = asyncio.get_running_loop().create_future()
        with contextlib.suppress(TimeoutError):
            # Shielded: one waiter timing out must not cancel the others' future.
            await asyncio.wait_for(asyncio.shield(self._next_change), within)

    async def all(self) -> dict[str, Territory]:
        snapshot, _ = await self._current()
        return snapshot

    async def get(self, code: str) -> Territory | None:
        """The registered territory `code` (active or not), or None."""
        snapshot, fresh = await self._current()
        found = snapshot.get(code)
        if found is not None or fresh:
            return found
        missed_at = self._misses.get(code)
        if missed_at is not None and not self._older_than_ttl(missed_at):
            return None
        # Perhaps registered since the snapshot was read: look once.
        generation = self._generation
        async with self._engine().connect() as connection:
            found = await find_territory(connection, code)
        if generation == self._generation:
            if found is not None and self._snapshot is not None:
                self._snapshot = {**self._snapshot, code: found}
            elif found is None:
                if len(self._misses) >= MAX_REMEMBERED_MISSES:
                    self._misses.clear()
                self._misses[code] = time.monotonic()
        return found

    async def close(self) -> None:
        refreshing, self._refreshing = self._refreshing, None
        if refreshing is not None:
            refreshing.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await refreshing
        listener, self._listener = self._listener, None
        if listener is not None and not listener.is_closed():
            await listener.close()

    # ------------------------------------------------------------------ internals

    def _older_than_ttl(self, moment: float) -> bool:
        return time.monotonic() - moment > self._ttl

    async def _current(self) -> tuple[dict[str, Territory], bool]:
        """The snapshot, and whether it was read from the database just now."""
        snapshot = self._snapshot
        if snapshot is not None and not self._older_than_ttl(self._loaded_at):
            return snapshot, False
        if snapshot is not None and self.listening:
            # Changes would have dropped it: expired only by age, it is read again meanwhile.
            self._refresh_in_background()
            return snapshot, False
        return await self._load()

    async def _load(self) -> tuple[dict[str, Territory], bool]:
        async with self._lock:
            if self._snapshot is not None and not self._older_than_ttl(self._loaded_at):
                return self._snapshot, False
            # Listen before reading, so no change can fall between the read and the listening.
            await self._listen()
            generation = self._generation
            async with self._engine().connect() as connection:
                snapshot = await load_registry(connection)
            if generation == self._generation:
                self._snapshot = snapshot
                self._loaded_at = time.monotonic()
            # Otherwise the registry changed during the read: this caller has an answer as
            # fresh as its call, the next one reads again.
            return snapshot, True

    def _refresh_in_background(self) -> None:
        if self._refreshing is None or self._refreshing.done():
            self._refreshing = asyncio.create_task(self._refresh(), name="territory-registry")

    async def _refresh(self) -> None:
        try:
            await self._load()
        except Exception as exc:
            # The copy in hand stays; the next lookup tries again.
            log.warning("Territory registry not read again (the cached copy stays): %s", exc)

    async def _listen(self) -> None:
        if self.listening or not self._older_than_ttl(self._listen_attempted_at):
            return
        self._listen_attempted_at = time.monotonic()
        url = make_url(self._engine().url).set(drivername="postgresql")
        try:
            listener = await asyncpg.connect(
                url.render_as_string(hide_password=False),
                timeout=LISTENER_CONNECT_TIMEOUT_SECONDS,
                server_settings={"application_name": "unityplan:registry-listener"},
            )
            await listener.add_listener(REGISTRY_CHANNEL, self._on_change)
        except (OSError, TimeoutError, asyncpg.PostgresError) as exc:
            log.warning("Territory registry changes not followed (TTL only): %s", exc)
            return
        listener.add_termination_listener(self._on_lost)
        self._listener = listener

    def _on_change(self, *_: Any) -> None:
        self.invalidate()

    def _on_lost(self, *_: Any) -> None:
        # Changes may be missed from now on: distrust the snapshot, listen again on next read.
        self._listener = None
        self._listen_attempted_at = _NEVER
        self.invalidate()
