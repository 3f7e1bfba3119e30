"""Live event feeds for the auth subscriptions, read from the subjects the outbox relay publishes.

One NATS connection per process, opened on the first subscription. A plain NATS subscription is
enough here: a subscriber only wants what happens while it listens, not the stream's history.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import AsyncGenerator

import nats
from nats.aio.client import Client as NatsClient

from core.config import NatsSettings
from core.events import Event, EventFormatError, Namespace
from core.events.timing import note_received

logger = logging.getLogger(__name__)


class EventFeed:
    def __init__(self, settings: NatsSettings) -> None:
        self._settings = settings
        self._namespace = Namespace.from_settings(settings)
        self._client: NatsClient | None = None
        self._lock = asyncio.Lock()
        self.listening = 0  # subscriptions currently open (tests wait for one)

    async def _connected(self) -> NatsClient:
        async with self._lock:
            if self._client is None or self._client.is_closed:
                self._client = await nats.connect(
                    self._settings.url, name="auth-subscriptions", connect_timeout=5
                )
            return self._client

    async def events(self, subject: str) -> AsyncGenerator[Event, None]:
        """Events published on `subject` (logical, without namespace) from now on."""
        client = await self._connected()
        subscription = await client.subscribe(self._namespace.wire_subject(subject))
        self.listening += 1
        try:
            async for message in subscription.messages:
                try:
                    event = Event.from_bytes(message.data)
                except EventFormatError:
                    logger.warning("ignored a malformed event on %s", subject)
                    continue
                note_received(event.time, event.publishtime)
                yield event
        finally:
            self.listening -= 1
            if not client.is_closed:
                await subscription.unsubscribe()

    async def close(self) -> None:
        client, self._client = self._client, None
        if client is not None and not client.is_closed:
            await client.drain()
