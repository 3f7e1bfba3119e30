"""Live event feeds for the user subscriptions, read from the subjects the outbox relay publishes.

A plain NATS subscription (not a durable consumer): a subscriber only wants what happens while it
listens. One connection per process, opened by the first subscription.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncIterator

import nats
from nats.aio.client import Client as NatsClient

from core.config import NatsSettings
from core.events import Event, EventFormatError, Namespace
from core.events.timing import note_received

log = logging.getLogger(__name__)


class EventFeed:
    def __init__(self, settings: NatsSettings) -> None:
        self._settings = settings
        self._namespace = Namespace.from_settings(settings)
        self._client: NatsClient | None = None
        self._lock = asyncio.Lock()
        self.listening = 0  # subscriptions open right now

    async def _connected(self) -> NatsClient:
        async with self._lock:
            if self._client is None or self._client.is_closed:
                self._client = await nats.connect(
                    self._settings.url, name="user-subscriptions", connect_timeout=5
                )
            return self._client

    async def events(self, subject: str) -> AsyncIterator[Event]:
        """Events on `subject` (logical, wildcards allowed) from now on."""
        client = await self._connected()
        subscription = await client.subscribe(self._namespace.wire_subject(subject))
        self.listening += 1
        try:
            async for message in subscription.messages:
                try:
                    event = Event.from_bytes(message.data)
                except EventFormatError:
                    log.warning("ignored a malformed event on %s", message.subject)
                    continue
                note_received(event.time, event.publishtime)
                yield event
        finally:
            self.listening -= 1
            await subscription.unsubscribe()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and not client.is_closed:
            await client.drain()
