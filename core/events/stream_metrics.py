"""JetStream as the server sees it: messages and bytes per stream, and per durable consumer
the messages not yet delivered and those delivered but not yet acknowledged.

Sampled in the background (a scrape must not wait on NATS) and served from the latest sample,
so a stream or consumer that disappears also disappears from the metrics. Names are the base
stream names, without the namespace prefix.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterator
from typing import Any
from weakref import WeakKeyDictionary

from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from core.background import cancelled_meanwhile, stop_tasks
from core.events.bus import EventBus

log = logging.getLogger(__name__)

SAMPLE_INTERVAL_SECONDS = 5.0
FULL_SAMPLE_SECONDS = 300.0

StreamSample = dict[str, tuple[float, float]]  # stream -> (messages, bytes)
ConsumerSample = dict[tuple[str, str], tuple[float, float]]  # (stream, consumer) -> pending, acks

_SAMPLERS: WeakKeyDictionary[CollectorRegistry, StreamSampler] = WeakKeyDictionary()


class StreamSampler(Collector):
    """Registers itself on `registry`; `start()` samples every `interval_seconds` until `stop()`."""

    def __init__(
        self,
        bus: EventBus,
        registry: CollectorRegistry,
        *,
        interval_seconds: float = SAMPLE_INTERVAL_SECONDS,
    ) -> None:
        self._bus = bus
        self.interval_seconds = interval_seconds
        self.streams: StreamSample = {}
        self.consumers: ConsumerSample = {}
        self._task: asyncio.Task[None] | None = None
        # Consumers are listed once per stream (no call covers many): a stream whose last
        # sequence did not move and whose consumers had nothing waiting keeps its sample, and
        # every stream is listed afresh every FULL_SAMPLE_SECONDS (new or deleted consumers).
        self._last_seq: dict[str, int] = {}
        self._rounds = 0
        self._full_every = max(1, round(FULL_SAMPLE_SECONDS / interval_seconds))
        # One sampler per registry: a relay created again (a restarted app) takes over.
        previous = _SAMPLERS.get(registry)
        if previous is not None:
            registry.unregister(previous)
        registry.register(self)
        _SAMPLERS[registry] = self

    def _base_name(self, stream: str) -> str | None:
        """The stream's name without the namespace prefix; None for another namespace's."""
        prefix = self._bus.namespace.stream("")
        if not prefix:
            return stream
        return stream[len(prefix) :] if stream.startswith(prefix) else None

    async def sample_once(self) -> None:
        if not self._bus.connected:
            return
        js = self._bus.js
        streams: StreamSample = {}
        consumers: ConsumerSample = {}
        full = self._rounds % self._full_every == 0
        self._rounds += 1
        before: dict[str, ConsumerSample] = {}
        for key, value in self.consumers.items():
            before.setdefault(key[0], {})[key] = value
        last_seq: dict[str, int] = {}
        for info in await _all_streams(js):
            name = info.config.name or ""
            base = self._base_name(name)
            if base is None:
                continue
            streams[base] = (float(info.state.messages), float(info.state.bytes))
            last_seq[base] = int(info.state.last_seq or 0)
            kept = before.get(base, {})
            if (
                not full
                and self._last_seq.get(base) == last_seq[base]
                and all(value == (0.0, 0.0) for value in kept.values())
            ):
                consumers.update(kept)
                continue
            for consumer in await js.consumers_info(name):
                durable = consumer.config.durable_name or consumer.name
                if durable:
                    consumers[(base, durable)] = (
                        float(consumer.num_pending or 0),
                        float(consumer.num_ack_pending or 0),
                    )
        self.streams, self.consumers, self._last_seq = streams, consumers, last_seq

    async def _run(self) -> None:
        while True:
            try:
                await self.sample_once()
            except Exception as exc:  # NATS hiccups: keep the last sample, try again later
                if cancelled_meanwhile():
                    raise asyncio.CancelledError from exc
                log.debug("JetStream sample failed: %s", exc)
            await asyncio.sleep(self.interval_seconds)

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.create_task(self._run(), name="jetstream-sampler")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await stop_tasks([task])

    def collect(self) -> Iterator[GaugeMetricFamily]:
        messages = GaugeMetricFamily(
            "jetstream_stream_messages", "Messages stored in the stream", labels=["stream"]
        )
        size = GaugeMetricFamily(
            "jetstream_stream_bytes", "Bytes stored in the stream", labels=["stream"]
        )
        for stream, (count, stored) in sorted(self.streams.items()):
            messages.add_metric([stream], count)
            size.add_metric([stream], stored)
        pending = GaugeMetricFamily(
            "jetstream_consumer_pending_messages",
            "Messages of the stream the durable consumer has not been delivered yet",
            labels=["stream", "consumer"],
        )
        unacked = GaugeMetricFamily(
            "jetstream_consumer_ack_pending_messages",
            "Messages delivered to the durable consumer and not acknowledged yet",
            labels=["stream", "consumer"],
        )
        for (stream, consumer), (waiting, in_flight) in sorted(self.consumers.items()):
            pending.add_metric([stream, consumer], waiting)
            unacked.add_metric([stream, consumer], in_flight)
        yield from (messages, size, pending, unacked)


async def _all_streams(js: Any) -> list[Any]:
    """Every stream's info: the server answers a page (256) at a time, and a server shared by
    other namespaces easily holds more."""
    found: list[Any] = []
    while True:
        page = await js.streams_info(offset=len(found))
        found += page
        if not page or len(page) < _STREAMS_PAGE:
            return found


_STREAMS_PAGE = 256
