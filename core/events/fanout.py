"""One durable consumer per territory stream, following the registry: a territory provisioned
while the service runs is consumed without a restart."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable, Iterable
from typing import TYPE_CHECKING

from core.events.consumer import Consumer, Handler
from core.events.subjects import validate_durable_name

if TYPE_CHECKING:
    from core.events.bus import EventBus

log = logging.getLogger(__name__)

TerritoryCodes = Callable[[], Awaitable[Iterable[str]]]
"""Where the active territory codes come from (the registry)."""


class TerritoryConsumers:
    """Consumes `territory.<code>.<subject_tail>` of every active territory with durable
    consumers named `<durable_prefix>-<code>` (a JetStream consumer cannot span streams)."""

    def __init__(
        self,
        bus: EventBus,
        territories: TerritoryCodes,
        *,
        durable_prefix: str,
        subject_tail: str,
        handler: Handler,
        refresh_seconds: float = 30.0,
    ) -> None:
        self.durable_prefix = validate_durable_name(durable_prefix)
        self._bus = bus
        self._territories = territories
        self._tail = subject_tail
        self._handler = handler
        self._refresh_seconds = refresh_seconds
        self.consumers: dict[str, Consumer] = {}
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        """Consume every active territory now, then look for new ones periodically."""
        await self.refresh()
        self._task = asyncio.create_task(self._follow(), name=f"consumers:{self.durable_prefix}")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        consumers, self.consumers = self.consumers, {}
        for consumer in consumers.values():
            await consumer.stop()

    async def refresh(self) -> list[str]:
        """Start consumers for territories that have none yet; returns their codes."""
        added: list[str] = []
        for code in sorted(await self._territories()):
            if code in self.consumers:
                continue
            # The relay creates streams too, but this consumer may be first to need one.
            await self._bus.ensure_territory_stream(code)
            self.consumers[code] = await self._bus.consume(
                f"{self.durable_prefix}-{code}",
                f"territory.{code}.{self._tail}",
                self._handler,
            )
            added.append(code)
        return added

    async def _follow(self) -> None:
        while True:
            await asyncio.sleep(self._refresh_seconds)
            try:
                added = await self.refresh()
            except Exception as exc:  # the registry or NATS may be briefly away; try later
                log.warning("consumers %s cannot follow the registry: %s", self.durable_prefix, exc)
                continue
            if added:
                log.info("consumers %s now follow %s", self.durable_prefix, ", ".join(added))
