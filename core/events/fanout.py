"""One durable consumer per territory stream, all handled by one loop of the service, following
the registry: a territory provisioned while the service runs is consumed without a restart, as
soon as the registry's change notification reaches the service.

A JetStream consumer cannot span streams, so each territory's stream has its own durable
consumer; they are push consumers all delivering to one subject per handler
(`deliver.<prefix>`), which the service's replicas share as a queue group. An idle territory
then costs nothing: no pull request per territory and second, no task per territory.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from typing import TYPE_CHECKING

from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import APIError, NotFoundError

from core.background import cancelled_meanwhile
from core.events.consumer import Consumer, Handler
from core.events.subjects import validate_durable_name

if TYPE_CHECKING:
    from core.db.database import Database
    from core.events.bus import EventBus

log = logging.getLogger(__name__)

# Unacknowledged events the server hands one territory's consumer at a time.
_MAX_ACK_PENDING = 256
_ACK_WAIT_SECONDS = 30.0
# Events of one subject are handled by one worker, in order; subjects spread over the workers.
_WORKERS = 4
_DECLARING_AT_ONCE = 16


class TerritoryConsumers:
    """Consumes `territory.<code>.<subject_tail>` of every active territory with durable
    consumers named `<durable_prefix>-<code>`, handled by this one object's workers."""

    def __init__(
        self,
        bus: EventBus,
        db: Database,
        *,
        durable_prefix: str,
        subject_tail: str,
        handler: Handler,
        refresh_seconds: float = 5.0,
    ) -> None:
        self.durable_prefix = validate_durable_name(durable_prefix)
        self._bus = bus
        self._db = db
        self._tail = subject_tail
        self._handler = handler
        self._refresh_seconds = refresh_seconds
        self._deliver = bus.namespace.wire_subject(f"deliver.{self.durable_prefix}")
        self.consumers: dict[str, Consumer] = {}
        self._by_name: dict[str, Consumer] = {}
        self._queues = [asyncio.Queue[Msg]() for _ in range(_WORKERS)]
        self._subscription: Subscription | None = None
        self._tasks: list[asyncio.Task[None]] = []
        self._busy: set[int] = set()
        self._reconnections_seen = bus.reconnections
        self._seen_generation = 0

    async def start(self) -> None:
        """Consume every active territory now, then follow the registry."""
        client = self._bus.client
        if client is None:
            raise RuntimeError("The event bus is not connected")
        # One subscription for every territory's deliveries; the queue group shares them
        # between this service's replicas (the consumers deliver to that group only).
        self._subscription = await client.subscribe(
            self._deliver, queue=self.durable_prefix, cb=self._received
        )
        self._seen_generation = self._db.territories_generation  # before the first look
        await self.refresh()
        self._tasks = [
            asyncio.create_task(self._work(index), name=f"consumers:{self.durable_prefix}:{index}")
            for index in range(_WORKERS)
        ]
        self._tasks.append(
            asyncio.create_task(self._follow(), name=f"consumers:{self.durable_prefix}")
        )

    async def stop(self) -> None:
        """Stop receiving, finish the events in hand, give back the ones waiting."""
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            # Unsubscribing keeps the durable consumers (and their positions) on the server.
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()
        tasks, self._tasks = self._tasks, []
        for index, task in enumerate(tasks):
            if index not in self._busy:
                task.cancel()
        for task in tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        for queue in self._queues:
            while not queue.empty():
                with contextlib.suppress(Exception):
                    await queue.get_nowait().nak()
        self.consumers, self._by_name = {}, {}

    async def refresh(self) -> list[str]:
        """Declare consumers for territories that have none yet; returns their codes."""
        active = sorted(territory.code for territory in await self._db.territories())
        added = [code for code in active if code not in self.consumers]
        # Declared a few at a time: a service starting with a thousand territories waits for
        # round trips to NATS, not for NATS to work.
        slots = asyncio.Semaphore(_DECLARING_AT_ONCE)

        async def declare(code: str) -> None:
            async with slots:
                self.consumers[code] = await self._declare(code)

        await asyncio.gather(*(declare(code) for code in added))
        return added

    async def _declare(self, code: str) -> Consumer:
        # The relay creates streams too, but this consumer may be first to need one.
        await self._bus.ensure_territory_stream(code)
        consumer = self._bus.consumer(
            f"{self.durable_prefix}-{code}", f"territory.{code}.{self._tail}", self._handler
        )
        # Known before the server knows it: its first events may arrive right away.
        self._by_name[consumer.durable_name] = consumer
        config = ConsumerConfig(
            durable_name=consumer.durable_name,
            name=consumer.durable_name,
            filter_subject=consumer.wire_filter,
            deliver_subject=self._deliver,
            deliver_group=self.durable_prefix,
            ack_policy=AckPolicy.EXPLICIT,
            deliver_policy=DeliverPolicy.ALL,
            ack_wait=_ACK_WAIT_SECONDS,
            max_ack_pending=_MAX_ACK_PENDING,
        )
        js = self._bus.js
        try:
            await js.add_consumer(consumer.stream, config)
        except APIError:
            found = await js.consumer_info(consumer.stream, consumer.durable_name)
            if found.config.deliver_subject == config.deliver_subject:
                pass  # a replica declared it meanwhile
            elif found.config.deliver_subject is None:
                await self._replace_pull_consumer(consumer, config)
            else:
                raise
        return consumer

    async def _replace_pull_consumer(self, consumer: Consumer, config: ConsumerConfig) -> None:
        """A pull consumer of the same name (an earlier release) becomes a push consumer going
        on from its acknowledged position; what it had delivered unacknowledged comes again,
        which the processed-events record makes harmless."""
        js = self._bus.js
        found = await js.consumer_info(consumer.stream, consumer.durable_name)
        floor = found.ack_floor.stream_seq if found.ack_floor is not None else 0
        with contextlib.suppress(NotFoundError):
            await js.delete_consumer(consumer.stream, consumer.durable_name)
        config.deliver_policy = DeliverPolicy.BY_START_SEQUENCE
        config.opt_start_seq = floor + 1
        try:
            await js.add_consumer(consumer.stream, config)
        except APIError:
            # Another replica replaced it first (from the same position).
            found = await js.consumer_info(consumer.stream, consumer.durable_name)
            if found.config.deliver_subject != config.deliver_subject:
                raise
        log.info("consumer %s now delivers to the service's loop", consumer.durable_name)

    async def _received(self, message: Msg) -> None:
        # Events of one subject always go to the same worker, so they are handled in order.
        self._queues[hash(message.subject) % _WORKERS].put_nowait(message)

    async def _work(self, index: int) -> None:
        queue = self._queues[index]
        while self._subscription is not None:  # once stopping, the queue's rest is given back
            message = await queue.get()
            self._busy.add(index)
            try:
                consumer = self._by_name.get(_consumer_of(message))
                if consumer is None:
                    # Not this object's (a replica of another release?): for someone else.
                    log.debug("consumers %s got an event of an unknown consumer", self._deliver)
                    await message.nak(delay=_ACK_WAIT_SECONDS)
                    continue
                await consumer.deliver(message)
            except Exception as exc:
                # The ack (or nak) did not reach the server: JetStream redelivers after the
                # ack wait, and the processed-events record makes that harmless.
                log.warning("consumers %s could not settle an event: %s", self.durable_prefix, exc)
            finally:
                self._busy.discard(index)

    async def _follow(self) -> None:
        """Declare consumers for new territories when the registry changes, and every
        `refresh_seconds` in case a change went unheard."""
        seen = self._seen_generation
        while True:
            await self._db.territories_changed(seen, self._refresh_seconds)
            seen = self._db.territories_generation
            try:
                if self._bus.reconnections != self._reconnections_seen:
                    # The server may have restarted without its store: declare every consumer
                    # again (a no-op where they still exist).
                    self._reconnections_seen = self._bus.reconnections
                    for code in list(self.consumers):
                        await self._declare(code)
                added = await self.refresh()
            except Exception as exc:  # the registry or NATS may be briefly away; try later
                if cancelled_meanwhile():
                    raise asyncio.CancelledError from exc
                log.warning("consumers %s cannot follow the registry: %s", self.durable_prefix, exc)
                continue
            if added:
                log.info("consumers %s now follow %s", self.durable_prefix, ", ".join(added))


def _consumer_of(message: Msg) -> str:
    try:
        return message.metadata.consumer
    except Exception:  # not a JetStream delivery (nothing else is sent to these subjects)
        return ""
