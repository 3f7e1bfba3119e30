"""Live event feeds for GraphQL subscriptions, read from JetStream so that a NATS outage or
restart loses nothing a subscriber was waiting for.

A plain NATS subscription only hears what is published while it is connected: the events the
outbox relay sends out as soon as NATS is back (the backlog of the outage) would reach nobody,
because the subscriber's own connection comes back a moment later. Here each stream that local
subscribers listen to has one *tap*: an ephemeral JetStream consumer delivering from "now" on
and, after every reconnect, from the stream sequence after the last one it saw. Each event is
handed to the local subscribers whose subject filter it matches, in stream order.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncGenerator
from dataclasses import dataclass, field

import nats
import nats.errors
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import NotFoundError

from core.config import NatsSettings
from core.errors import ServiceUnavailable
from core.events.bus import abandon
from core.events.cloudevents import Event, EventFormatError
from core.events.streams import StreamSpec, ensure_stream, realtime_stream, territory_stream_spec
from core.events.subjects import REALTIME_USER_PREFIX, Namespace
from core.events.timing import note_received

log = logging.getLogger(__name__)

LIVE_EVENTS_UNAVAILABLE = "Live events cannot be followed right now, try again"

_CONNECT_SECONDS = 5.0
# An abandoned consumer (its process died) is removed by the server after this long.
_INACTIVE_SECONDS = 60.0
# Local subscribers slower than this many events behind are cut off rather than slowing the rest.
_QUEUE_LIMIT = 1000


def subject_matches(pattern: str, subject: str) -> bool:
    """Whether NATS subject `subject` matches filter `pattern` (`*` one token, `>` the rest)."""
    wanted, parts = pattern.split("."), subject.split(".")
    for index, part in enumerate(wanted):
        if part == ">":
            return len(parts) > index
        if index >= len(parts) or part not in ("*", parts[index]):
            return False
    return len(parts) == len(wanted)


class SubscriberTooSlow(Exception):
    """A subscriber fell `_QUEUE_LIMIT` events behind: its subscription ends."""


@dataclass(eq=False)
class _Listener:
    pattern: str  # wire subject filter
    queue: asyncio.Queue[Event | SubscriberTooSlow] = field(
        default_factory=lambda: asyncio.Queue(_QUEUE_LIMIT)
    )

    @property
    def bucket(self) -> str:
        return _bucket(self.pattern)


# Listeners are indexed by the first tokens of their filter (`rt.user.<id>`, `territory.dk.user`),
# so an event is matched against its own few listeners, not against every one of the process.
_BUCKET_TOKENS = 3
_WILDCARD_BUCKET = "*"


def _bucket(subject: str) -> str:
    head = subject.split(".", _BUCKET_TOKENS)[:_BUCKET_TOKENS]
    if len(head) < _BUCKET_TOKENS or any(part in ("*", ">") for part in head):
        return _WILDCARD_BUCKET
    return ".".join(head)


class _Tap:
    """One stream's ephemeral consumer, resumed after the last delivered sequence."""

    def __init__(self, feed: LiveFeed, spec: StreamSpec) -> None:
        self.feed = feed
        self.spec = spec
        self.listeners: dict[str, list[_Listener]] = {}
        self.last_sequence: int | None = None  # None: nothing seen yet, deliver new ones only
        self._subscription: Subscription | None = None
        self._consumer: str | None = None

    async def open(self) -> None:
        """(Re)create the consumer: new events only the first time, else from where it was."""
        client = self.feed.client
        await self._drop()
        js = client.jetstream()
        await ensure_stream(js, self.spec)
        start = self.last_sequence
        if start is not None:
            info = await js.stream_info(self.spec.name)
            if info.state.last_seq < start:  # the stream was recreated empty: take it all
                start = 0
        inbox = client.new_inbox()
        self._subscription = await client.subscribe(inbox, cb=self._deliver)
        config = ConsumerConfig(
            deliver_subject=inbox,
            ack_policy=AckPolicy.NONE,
            inactive_threshold=_INACTIVE_SECONDS,
            deliver_policy=DeliverPolicy.NEW if start is None else DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=None if start is None else start + 1,
        )
        consumer = await js.add_consumer(self.spec.name, config)
        self._consumer = consumer.name

    async def close(self) -> None:
        await self._drop()

    async def _drop(self) -> None:
        subscription, self._subscription = self._subscription, None
        consumer, self._consumer = self._consumer, None
        client = self.feed.client
        if subscription is not None and client.is_connected:
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        if consumer is not None and client.is_connected:
            with contextlib.suppress(NotFoundError, Exception):
                await client.jetstream().delete_consumer(self.spec.name, consumer)

    async def _deliver(self, message: Msg) -> None:
        if not message.reply:  # a status message (heartbeat, flow control): not an event
            return
        sequence = message.metadata.sequence.stream
        if self.last_sequence is not None and sequence <= self.last_sequence:
            return  # a resumed consumer's overlap: delivered already
        self.last_sequence = sequence
        try:
            event = Event.from_bytes(message.data)
        except EventFormatError:
            log.warning("ignored a malformed event on %s", message.subject)
            return
        candidates = [
            *self.listeners.get(_bucket(message.subject), ()),
            *self.listeners.get(_WILDCARD_BUCKET, ()),
        ]
        for listener in candidates:
            if not subject_matches(listener.pattern, message.subject):
                continue
            try:
                listener.queue.put_nowait(event)
            except asyncio.QueueFull:
                self.remove(listener)
                listener.queue.get_nowait()  # room for the reason it ends
                listener.queue.put_nowait(SubscriberTooSlow())

    def add(self, listener: _Listener) -> None:
        self.listeners.setdefault(listener.bucket, []).append(listener)

    def remove(self, listener: _Listener) -> None:
        bucket = self.listeners.get(listener.bucket, [])
        if listener in bucket:
            bucket.remove(listener)
            if not bucket:
                del self.listeners[listener.bucket]


class LiveFeed:
    """The live events of one process's subscriptions: one NATS connection (opened by the
    first subscription) and one tap per stream somebody listens to."""

    def __init__(self, settings: NatsSettings, name: str) -> None:
        self._settings = settings
        self._name = name
        self._namespace = Namespace.from_settings(settings)
        self._client: NatsClient | None = None
        self._taps: dict[str, _Tap] = {}
        self._lock = asyncio.Lock()
        self.listening = 0  # subscriptions open right now

    @property
    def client(self) -> NatsClient:
        assert self._client is not None
        return self._client

    async def events(self, subject: str) -> AsyncGenerator[Event, None]:
        """Events on `subject` (logical; `*` and `>` allowed) from now on, none missed while
        NATS is away: those published meanwhile arrive, in order, once it is back."""
        pattern = self._namespace.wire_subject(subject)
        listener = _Listener(pattern)
        spec = self._stream_of(subject)
        async with self._lock:
            try:
                await self._connect()
                tap = self._taps.get(spec.name)
                if tap is None:
                    tap = _Tap(self, spec)
                    await tap.open()
                    self._taps[spec.name] = tap
            except (nats.errors.Error, OSError, TimeoutError) as exc:
                log.warning("live feed: cannot follow %s now: %s", spec.name, exc)
                raise ServiceUnavailable(LIVE_EVENTS_UNAVAILABLE) from None
            tap.add(listener)
        self.listening += 1
        try:
            while True:
                item = await listener.queue.get()
                if isinstance(item, SubscriberTooSlow):
                    raise item
                note_received(item.time, item.publishtime)
                yield item
        finally:
            self.listening -= 1
            async with self._lock:
                tap.remove(listener)
                if not tap.listeners and self._taps.get(spec.name) is tap:
                    del self._taps[spec.name]
                    await tap.close()

    def _stream_of(self, subject: str) -> StreamSpec:
        head, _, rest = subject.partition(".")
        if subject.startswith(REALTIME_USER_PREFIX + "."):
            return realtime_stream(self._settings)
        code = rest.partition(".")[0]
        if head == "territory" and code not in ("", "*", ">"):
            return territory_stream_spec(self._settings, code)
        raise ValueError(f"No live feed for subject {subject!r}")

    async def _connect(self) -> None:
        if self._client is not None and not self._client.is_closed:
            return
        client = NatsClient()
        try:
            # Unlimited reconnects keep the feed through an outage; the timeout bounds the
            # first attempt, which would otherwise retry forever.
            await asyncio.wait_for(
                client.connect(
                    servers=[self._settings.url],
                    name=self._name,
                    connect_timeout=2,
                    max_reconnect_attempts=-1,
                    reconnect_time_wait=1,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                ),
                _CONNECT_SECONDS,
            )
        except BaseException:
            await abandon(client)
            raise
        self._client = client

    async def _on_error(self, exc: Exception) -> None:
        # Connection errors while NATS is away are expected: one line, never a traceback.
        log.debug("live feed NATS: %s", exc)

    async def _on_disconnected(self) -> None:
        if self._taps:
            log.warning("live feed: NATS disconnected; events will follow once it is back")

    async def _on_reconnected(self) -> None:
        # The server may have restarted and forgotten its ephemeral consumers: resume each
        # stream after the last event it delivered here.
        asyncio.get_running_loop().create_task(self._resume())

    async def _resume(self) -> None:
        delay = 0.2
        while True:
            async with self._lock:
                pending = list(self._taps.values())
                try:
                    for tap in pending:
                        await tap.open()
                    log.info("live feed: resumed %d stream(s) after reconnecting", len(pending))
                    return
                except Exception as exc:
                    if self._client is None or self._client.is_closed:
                        return
                    log.warning("live feed: resuming failed (%s); retrying", exc)
            await asyncio.sleep(delay)
            delay = min(delay * 2, 5.0)

    async def close(self) -> None:
        async with self._lock:
            taps, self._taps = list(self._taps.values()), {}
            for tap in taps:
                await tap.close()
            client, self._client = self._client, None
        if client is not None and not client.is_closed:
            await client.drain()
