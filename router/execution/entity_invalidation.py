"""Evicting cached entities when the domain events say they changed (a profile update, a
privacy change, a new avatar or a deleted profile evicts that user's cached entities)."""

from __future__ import annotations

import logging

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription

from core.config import Settings
from core.events import Event, EventBus
from core.events.cloudevents import EventFormatError
from router.execution.entity_cache import EntityCache

log = logging.getLogger("unityplan.router")

# `territory.<code>.user.<action>` actions that change what a User entity answers.
USER_CHANGES = frozenset(
    {"profile_updated", "privacy_changed", "avatar_changed", "profile_deleted"}
)


class EntityInvalidation:
    """A plain NATS subscription (no durable consumer: a router that was down has an empty
    cache to protect, and entries expire by their TTL anyway)."""

    def __init__(self, settings: Settings, cache: EntityCache) -> None:
        self.bus = EventBus(settings, name="unityplan-router-entity-cache")
        self.cache = cache
        self.evicted = 0
        self._subscription: Subscription | None = None

    async def start(self) -> None:
        await self.bus.connect()
        client = self.bus.client
        assert client is not None
        subject = self.bus.namespace.wire_subject("territory.*.user.*")
        self._subscription = await client.subscribe(subject, cb=self._on_event)

    async def stop(self) -> None:
        if self._subscription is not None:
            await self._subscription.unsubscribe()
            self._subscription = None
        await self.bus.close()

    async def _on_event(self, message: Msg) -> None:
        if message.subject.rsplit(".", 1)[-1] not in USER_CHANGES:
            return
        try:
            event = Event.from_bytes(message.data)
        except EventFormatError as exc:
            log.warning("entity cache: unreadable event on %s: %s", message.subject, exc)
            return
        user_id = event.data.get("userId") if isinstance(event.data, dict) else None
        if not isinstance(user_id, str):
            return
        try:
            self.evicted += await self.cache.evict("User", user_id)
        except Exception as exc:  # entries still expire by their TTL
            log.warning("entity cache: eviction of user %s failed: %s", user_id, exc)
