"""Durable, idempotent JetStream consumers: each event is handled once per consumer.

The handler runs in a transaction on the event's territory schema (or `global`); the event id is
recorded in that schema's `processed_events` in the same transaction, so a redelivery (a lost
ack, a crash after commit) is acknowledged without running the handler again.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from contextlib import AbstractAsyncContextManager
from typing import TYPE_CHECKING

from nats.aio.msg import Msg
from nats.js import JetStreamContext
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from opentelemetry import trace
from opentelemetry.trace import SpanKind, Status, StatusCode
from prometheus_client import CollectorRegistry
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.tables import processed_events
from core.events.cloudevents import Event, EventFormatError
from core.events.metrics import ConsumeOutcome, consumed_counter
from core.events.retry import backoff_seconds
from core.events.subjects import Namespace, stream_for_filter, validate_durable_name
from core.events.tracecontext import restore_trace_context

if TYPE_CHECKING:
    from core.db.database import Database

log = logging.getLogger(__name__)
tracer = trace.get_tracer("core.events")

Handler = Callable[[Event, AsyncSession], Awaitable[None]]
"""Handles one event. It only writes through the session it is given (and flushes); the
consumer commits, then acknowledges."""

_FETCH_WAIT_SECONDS = 1.0


class Consumer:
    """A running durable pull consumer on the one stream its subject filter lies in."""

    def __init__(
        self,
        *,
        js: JetStreamContext,
        db: Database,
        namespace: Namespace,
        durable_name: str,
        subject_filter: str,
        handler: Handler,
        batch_size: int,
        ack_wait_seconds: float,
        max_retry_delay: float,
        registry: CollectorRegistry | None = None,
    ) -> None:
        self.durable_name = validate_durable_name(durable_name)
        self.stream = namespace.stream(stream_for_filter(subject_filter))
        self._js = js
        self._db = db
        self._filter = namespace.wire_subject(subject_filter)
        self._handler = handler
        self._batch_size = batch_size
        self._ack_wait = ack_wait_seconds
        self._max_retry_delay = max_retry_delay
        self._consumed = consumed_counter(registry)
        self._subscription: JetStreamContext.PullSubscription | None = None
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._busy = False

    @property
    def wire_filter(self) -> str:
        """The subject filter as the server knows it (within the namespace)."""
        return self._filter

    async def start(self) -> None:
        """Create (or update) the durable consumer on the server and start pulling."""
        await self._declare()
        self._subscription = await self._js.pull_subscribe_bind(
            durable=self.durable_name, stream=self.stream
        )
        self._task = asyncio.create_task(self._run(), name=f"consumer:{self.durable_name}")

    async def _declare(self) -> None:
        await self._js.add_consumer(
            self.stream,
            ConsumerConfig(
                durable_name=self.durable_name,
                name=self.durable_name,
                filter_subject=self._filter,
                ack_policy=AckPolicy.EXPLICIT,
                deliver_policy=DeliverPolicy.ALL,
                ack_wait=self._ack_wait,
            ),
        )

    async def stop(self) -> None:
        """Finish the event in hand, give back the rest of the batch, and stop."""
        self._stopping = True
        task, self._task = self._task, None
        if task is not None:
            if not self._busy:
                task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
        subscription, self._subscription = self._subscription, None
        if subscription is not None:
            # Unsubscribing keeps the durable consumer (and its position) on the server.
            with contextlib.suppress(Exception):
                await subscription.unsubscribe()

    async def _run(self) -> None:
        assert self._subscription is not None
        failures = 0
        while not self._stopping:
            try:
                messages = await self._subscription.fetch(
                    self._batch_size, timeout=_FETCH_WAIT_SECONDS
                )
            except TimeoutError:
                continue
            except Exception as exc:  # NATS outages must not end the consumer
                failures += 1
                log.warning("consumer %s cannot fetch: %s", self.durable_name, exc)
                await asyncio.sleep(backoff_seconds(failures, base=0.2, cap=self._max_retry_delay))
                # A server restarted without its store has forgotten the durable consumer
                # (and perhaps the stream, which the relay recreates): declare it again.
                with contextlib.suppress(Exception):
                    await self._declare()
                continue
            failures = 0
            for index, message in enumerate(messages):
                if self._stopping:
                    await self._give_back(messages[index:])
                    break
                self._busy = True
                try:
                    await self.deliver(message)
                except Exception as exc:
                    # The ack (or nak) did not reach the server: JetStream redelivers after
                    # the ack wait, and the processed-record makes that harmless.
                    log.warning(
                        "consumer %s could not settle a message: %s", self.durable_name, exc
                    )
                finally:
                    self._busy = False

    async def _give_back(self, messages: list[Msg]) -> None:
        for message in messages:
            with contextlib.suppress(Exception):
                await message.nak()

    async def deliver(self, message: Msg) -> None:
        """Handle one message: run the handler unless already processed, then ack; nak with a
        growing delay if the handler fails; terminate a message that is not a CloudEvent."""
        try:
            event = Event.from_bytes(message.data)
        except EventFormatError as exc:
            log.error("consumer %s drops a malformed event: %s", self.durable_name, exc)
            self._count(ConsumeOutcome.MALFORMED)
            await message.term()
            return
        context = restore_trace_context(message.headers)
        with tracer.start_as_current_span(
            f"{self.durable_name} process",
            context=context,
            kind=SpanKind.CONSUMER,
            attributes={
                "messaging.system": "nats",
                "messaging.destination.name": message.subject,
                "messaging.message.id": str(event.id),
                "messaging.consumer.group.name": self.durable_name,
                # The territory code only: never personal data on spans.
                "territory": event.territory or "global",
            },
        ) as span:
            try:
                handled = await self.process(event)
            except Exception as exc:  # any failure is retried, none is fatal
                span.record_exception(exc)
                span.set_status(Status(StatusCode.ERROR))
                attempt = message.metadata.num_delivered or 1
                delay = backoff_seconds(attempt, base=0.5, cap=self._max_retry_delay)
                log.warning(
                    "consumer %s failed on event %s (delivery %d), retrying in %.1fs: %s",
                    self.durable_name,
                    event.id,
                    attempt,
                    delay,
                    exc,
                )
                self._count(ConsumeOutcome.FAILED)
                await message.nak(delay=delay)
                return
        self._count(ConsumeOutcome.HANDLED if handled else ConsumeOutcome.DUPLICATE)
        await message.ack()

    def _count(self, outcome: str) -> None:
        self._consumed.labels(consumer=self.durable_name, outcome=outcome).inc()

    async def process(self, event: Event) -> bool:
        """Run the handler for `event` in one transaction with its processed-record; returns
        False (and runs nothing) if this consumer already processed the event."""
        async with self._session_for(event) as session:
            # On a concurrent redelivery this waits for the other transaction, then finds the row.
            recorded = await session.execute(
                insert(processed_events)
                .values(consumer=self.durable_name, event_id=event.id)
                .on_conflict_do_nothing()
                .returning(processed_events.c.event_id)
            )
            if recorded.first() is None:
                log.debug("consumer %s already processed %s", self.durable_name, event.id)
                return False
            await self._handler(event, session)
            return True

    def _session_for(self, event: Event) -> AbstractAsyncContextManager[AsyncSession]:
        if event.territory is not None:
            return self._db.territory_session(event.territory)
        return self._db.global_session()
