"""The outbox relay: publishes committed outbox events of every schema on every pod to JetStream.

It is woken by the commit: every outbox insert sends a NOTIFY naming its schema, and the relay
publishes that outbox's events at once; a slow sweep over every outbox (one statement per pod)
is the safety net for notifications missed, and the relay polls while it cannot listen. The
sweep runs in a task of its own, so a notified event never waits for one to finish. An idle
territory costs nothing between sweeps.

Rows are claimed with `FOR UPDATE SKIP LOCKED`, so several relays share the work without
publishing one row twice; `Nats-Msg-Id` = event id makes a republish after a crash between
publishing and marking a no-op in JetStream. Failures back off exponentially; while NATS is
unreachable nothing is marked, and everything is published once it returns.

Events of one outbox go out in the order they were written, except that an event waiting out
a backoff is overtaken by later ones: consumers must not rely on order across a retry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import nats.errors
from nats.errors import BadSubjectError, MaxPayloadError
from nats.js.errors import BadRequestError, NoStreamResponseError
from prometheus_client import CollectorRegistry
from sqlalchemy import Text, cast, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from core.config import Settings
from core.db.tables import outbox
from core.db.territories import GLOBAL_SCHEMA, territory_code_of
from core.errors import BadUserInput, InfrastructureError, NotFound
from core.events.bus import EventBus, OutgoingDocument
from core.events.metrics import GLOBAL_LABEL, OutboxMetrics
from core.events.outbox import audience_of
from core.events.outbox_watch import OutboxListener, sweep
from core.events.retry import backoff_seconds
from core.events.stream_metrics import StreamSampler
from core.events.subjects import parse_subject, realtime_user_subject
from core.events.timing import with_publish_time
from core.events.tracecontext import end_publish_span, publish_headers, start_publish_span

if TYPE_CHECKING:
    from core.db.database import Database

log = logging.getLogger(__name__)

_ERROR_TEXT_MAX = 500
# Published rows older than the retention are deleted at most this often, this many at a time.
_PURGE_INTERVAL_SECONDS = 60.0
_PURGE_BATCH = 1000
# Failures that say nothing about the connection: a missing stream, an oversized or invalid
# event. Anything else (timeouts, JetStream unavailable) ends the pass.
_EVENT_SPECIFIC_ERRORS = (
    BadRequestError,
    NoStreamResponseError,
    MaxPayloadError,
    BadSubjectError,
    BadUserInput,
    ValueError,
)


@dataclass(frozen=True)
class OutboxSource:
    """One outbox table: a schema on a pod, labelled by its territory (or `global`)."""

    label: str
    pod_id: str
    schema: str


@dataclass
class _Batch:
    published: int = 0
    claimed: int = 0
    # The connection (not one event) failed: stop this pass instead of timing out on each row.
    halted: bool = False
    # Events failed: the shortest of their back-offs, in seconds (they are due again then).
    retry_in: float | None = None


class OutboxRelay:
    """Background publisher of outbox events; `start()` / `stop()` (or `async with`)."""

    def __init__(
        self,
        settings: Settings,
        db: Database,
        *,
        bus: EventBus | None = None,
        batch_size: int = 100,
        registry: CollectorRegistry | None = None,
        connect_timeout: float = 2.0,
    ) -> None:
        self._settings = settings
        self._db = db
        self._owns_bus = bus is None
        self._bus = bus if bus is not None else EventBus(settings, db, name="outbox-relay")
        self._batch_size = batch_size
        self._connect_timeout = connect_timeout
        self._poll_interval = settings.nats.outbox_poll_interval_seconds
        self._sweep_interval = settings.nats.outbox_sweep_seconds
        self._max_backoff = settings.nats.outbox_max_backoff_seconds
        self.metrics = OutboxMetrics.on(registry)
        # Stream sizes and consumer positions, on the service's own registry only.
        self._streams_sampler = StreamSampler(self._bus, registry) if registry is not None else None
        self._streams_ready: set[str] = set()
        self._reconnections_seen = 0
        self._gauges_refreshed: dict[str, float] = {}
        self._broken_sources: set[str] = set()
        self._purged_at: dict[str, float] = {}
        self._retention = timedelta(hours=settings.nats.outbox_retention_hours)
        self._task: asyncio.Task[None] | None = None
        self._sweeper: asyncio.Task[None] | None = None
        self._stop = asyncio.Event()
        self._wake = asyncio.Event()
        self._sweep_requested = asyncio.Event()
        self._listener = OutboxListener(
            db, on_notify=self._wake.set, on_lost=self._sweep_requested.set
        )
        # Outboxes with events to publish (notified, found by a sweep, or not drained yet).
        self._pending: dict[str, OutboxSource] = {}
        # When an outbox whose events failed is due again (their back-off), by label.
        self._retry_at: dict[str, tuple[float, OutboxSource]] = {}
        self.connect_failures = 0
        self.stream_failures = 0
        self.passes = 0
        self.sweeps = 0

    # ------------------------------------------------------------------ lifecycle

    @property
    def bus(self) -> EventBus:
        """The relay's NATS connection (for readiness checks)."""
        return self._bus

    async def start(self) -> None:
        if self._task is None:
            self._stop.clear()
            self._task = asyncio.create_task(self._run(), name="outbox-relay")
            self._sweeper = asyncio.create_task(self._sweep_loop(), name="outbox-sweeper")
            if self._streams_sampler is not None:
                self._streams_sampler.start()

    async def stop(self) -> None:
        """Finish the pass in progress (so no claimed row is left half-done), then stop."""
        self._stop.set()
        self._wake.set()
        self._sweep_requested.set()
        task, self._task = self._task, None
        sweeper, self._sweeper = self._sweeper, None
        for running in (task, sweeper):
            if running is not None:
                await running
        if self._streams_sampler is not None:
            await self._streams_sampler.stop()
        await self._listener.close()
        if self._owns_bus:
            await self._bus.close()

    async def __aenter__(self) -> OutboxRelay:
        await self.start()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        await self.stop()

    @property
    def listening(self) -> bool:
        """Whether commits wake the relay (every pod listened to); otherwise it polls."""
        return self._listener.listening

    def wake(self) -> None:
        """Sweep every outbox now rather than at the next sweep."""
        self._sweep_requested.set()

    async def _run(self) -> None:
        """Publish from the outboxes commits named, those a sweep found and those due again."""
        failed_passes = 0
        while not self._stop.is_set():
            self._wake.clear()
            published = 0
            try:
                # Connected while idle too: readiness reports the connection, and the first
                # event should not wait for it.
                await self._ensure_connected()
                await self._take_notified()
                self._take_retries(time.monotonic())
                if self._pending:
                    published = await self._pass(list(self._pending.values()), purge=False)
            except Exception as exc:
                # A database outage or a bug in one pass must not end the relay.
                failed_passes += 1
                log.warning(
                    "outbox relay pass failed (%d in a row): %s",
                    failed_passes,
                    exc,
                    exc_info=failed_passes == 1,
                )
            else:
                failed_passes = 0
            if published and self._pending:
                continue  # full batches: drain before sleeping
            failures = max(failed_passes, self.connect_failures, self.stream_failures)
            delay: float | None
            if failures:
                delay = backoff_seconds(failures, base=self._poll_interval, cap=self._max_backoff)
            elif self._pending:
                delay = self._poll_interval  # a pass halted (NATS slow or away): try again soon
            elif self._retry_at:
                soonest = min(at for at, _ in self._retry_at.values())
                delay = max(0.0, soonest - time.monotonic())
            else:
                delay = None  # until a commit, the sweeper or a stop wakes it
            if self._wake.is_set():
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), delay)

    async def _sweep_loop(self) -> None:
        """Listen for commits on every pod, then sweep every outbox for what no notification
        named; again every OUTBOX_SWEEP_SECONDS while listening, every poll interval while not
        (and at once when a listening connection is lost). What is due goes to `_run`."""
        failed = 0
        while not self._stop.is_set():
            self._sweep_requested.clear()
            try:
                # Listening before sweeping: a commit after this is notified, one before it is
                # found by the sweep.
                await self._listener.listen()
                await self._sweep()
            except Exception as exc:
                # A database outage must not end the sweeps; the publishing loop goes on.
                failed += 1
                log.warning(
                    "outbox sweep failed (%d in a row): %s", failed, exc, exc_info=failed == 1
                )
            else:
                failed = 0
            if self._pending:
                self._wake.set()
            interval = self._sweep_interval if self.listening else self._poll_interval
            if failed:
                retry = backoff_seconds(failed, base=self._poll_interval, cap=self._max_backoff)
                interval = min(interval, retry)
            if self._sweep_requested.is_set():
                continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._sweep_requested.wait(), interval)

    async def _sweep(self) -> None:
        """Find outboxes with due events (missed notifications, retries) and purge old rows."""
        sources = await self.sources()
        for source in sources:
            # Counters of every outbox exist from the start (at 0), so rates and alerts on
            # publish failures see a series before the first failure happens.
            self.metrics.published.labels(territory=source.label)
            self.metrics.failures.labels(territory=source.label)
        findings = await sweep(self._db, sources, self._retention)
        self.sweeps += 1
        for source in findings.due:
            self._pending[source.label] = source
        for source in findings.expired:
            if self._purge_due(source):
                try:
                    await self._purge(source)
                except Exception as exc:
                    log.warning("outbox relay cannot purge %s: %s", source.schema, exc)

    async def _take_notified(self) -> None:
        notified = self._listener.take()
        if not notified:
            return
        for pod_id, schema in notified:
            source = await self._notified_source(pod_id, schema)
            if source is not None:
                self._pending[source.label] = source
            else:
                # Not (yet) in the registry as this process knows it: the sweep finds it.
                log.debug("outbox relay notified by unknown schema %s on pod %s", schema, pod_id)

    async def _notified_source(self, pod_id: str, schema: str) -> OutboxSource | None:
        """The outbox a commit on `pod_id` named, looked up by itself (not by listing every
        territory: a pod holds thousands)."""
        if schema == GLOBAL_SCHEMA:
            default = self._db.default_pod
            return OutboxSource(GLOBAL_LABEL, default, GLOBAL_SCHEMA) if pod_id == default else None
        code = territory_code_of(schema)
        if code is None:
            return None
        try:
            territory = await self._db.territory(code)
        except (NotFound, BadUserInput):
            return None
        if territory.pod_id != pod_id or territory.schema != schema:
            return None
        return OutboxSource(territory.code, territory.pod_id, territory.schema)

    def _take_retries(self, now: float) -> None:
        for label, (at, source) in list(self._retry_at.items()):
            if at <= now:
                del self._retry_at[label]
                self._pending[label] = source

    # ------------------------------------------------------------------ one pass

    async def run_once(self) -> int:
        """Publish what is due in every outbox once; returns how many events were published."""
        return await self._pass(await self.sources(), purge=True)

    async def _pass(self, sources: list[OutboxSource], *, purge: bool) -> int:
        self.passes += 1
        if not await self._ensure_connected():
            return 0
        if not await self._ensure_streams(sources):
            return 0
        published = 0
        for source in sources:
            try:
                batch = await self._publish_batch(source)
                if purge and not batch.halted and self._purge_due(source):
                    await self._purge(source)
            except Exception as exc:
                # One broken schema (being migrated, say) must not hold up the others; its
                # traceback is logged once, not on every pass.
                first = source.label not in self._broken_sources
                self._broken_sources.add(source.label)
                self._pending.pop(source.label, None)  # the sweep looks again
                log.log(
                    logging.ERROR if first else logging.DEBUG,
                    "outbox relay cannot read %s on pod %s: %s",
                    source.schema,
                    source.pod_id,
                    exc,
                    exc_info=first,
                )
                continue
            self._broken_sources.discard(source.label)
            published += batch.published
            if batch.halted or batch.claimed >= self._batch_size:
                self._pending[source.label] = source
            else:
                self._pending.pop(source.label, None)
            if batch.retry_in is not None:
                at = time.monotonic() + batch.retry_in
                earlier = self._retry_at.get(source.label)
                if earlier is None or at < earlier[0]:
                    self._retry_at[source.label] = (at, source)
            if batch.halted:
                break
        return published

    async def sources(self) -> list[OutboxSource]:
        """The global outbox and the outbox of every active territory, on their pods."""
        found = [OutboxSource(GLOBAL_LABEL, self._db.default_pod, GLOBAL_SCHEMA)]
        for territory in await self._db.territories():
            found.append(OutboxSource(territory.code, territory.pod_id, territory.schema))
        return found

    async def _ensure_connected(self) -> bool:
        if self._bus.has_client:
            # Connected, or the client is reconnecting by itself; then this pass is skipped.
            return self._bus.connected
        try:
            await self._bus.connect(within_seconds=self._connect_timeout)
        except InfrastructureError as exc:
            self.connect_failures += 1
            log.warning("outbox relay: %s (attempt %d)", exc, self.connect_failures)
            return False
        self.connect_failures = 0
        return True

    async def _ensure_streams(self, sources: list[OutboxSource]) -> bool:
        """Streams exist before events are published to them, including those of territories
        provisioned while the relay runs, and after a reconnection to a server that may not
        have kept them."""
        if self._bus.reconnections != self._reconnections_seen:
            self._reconnections_seen = self._bus.reconnections
            self._streams_ready.clear()
        # Any outbox may hold global and cross-territory events: those streams come first.
        for label in [GLOBAL_LABEL, *(source.label for source in sources)]:
            if label in self._streams_ready:
                continue
            try:
                if label == GLOBAL_LABEL:
                    await self._bus.ensure_streams([])  # global and cross-territory
                else:
                    await self._bus.ensure_territory_stream(label)
            except (TimeoutError, nats.errors.Error, InfrastructureError) as exc:
                self.stream_failures += 1
                log.log(
                    logging.WARNING if self.stream_failures == 1 else logging.DEBUG,
                    "outbox relay cannot prepare the stream of %s: %s",
                    label,
                    exc,
                )
                return False
            self._streams_ready.add(label)
        self.stream_failures = 0
        return True

    async def _publish_batch(self, source: OutboxSource) -> _Batch:
        batch = _Batch()
        async with self._db.pod_session(source.pod_id, source.schema) as session:
            due = (
                await session.execute(
                    select(
                        outbox.c.id,
                        outbox.c.subject,
                        # As JSON text: published as stored, never decoded and re-encoded.
                        cast(outbox.c.payload, Text).label("payload"),
                        outbox.c.headers,
                        outbox.c.attempts,
                    )
                    .where(
                        # Nothing while another relay (a replica, the other service) publishes
                        # from this outbox: one at a time keeps each subject's order, and that
                        # one was woken by the same commits. Taken in this statement (no round
                        # trip of its own), held until this transaction ends.
                        select(func.pg_try_advisory_xact_lock(_outbox_lock(source)))
                        .scalar_subquery()
                        .is_(True),
                        outbox.c.sent_at.is_(None),
                        outbox.c.available_at <= func.now(),
                        ~_after_a_delayed_event,
                    )
                    .order_by(outbox.c.created_at)
                    .limit(self._batch_size)
                    .with_for_update(skip_locked=True)
                )
            ).all()
            batch.claimed = len(due)
            spans = [start_publish_span(row.subject, row.headers) for row in due]
            published_at = datetime.now(UTC)
            outgoing = [
                OutgoingDocument(
                    row.subject,
                    with_publish_time(row.payload.encode(), published_at),
                    str(row.id),
                    publish_headers(span, row.headers),
                )
                for row, span in zip(due, spans, strict=True)
            ]
            results = await self._bus.publish_documents(outgoing)
            for span, result in zip(spans, results, strict=True):
                end_publish_span(span, result if isinstance(result, Exception) else None)
            sent: list[uuid.UUID] = []
            for row, result in zip(due, results, strict=True):
                if not isinstance(result, Exception):
                    sent.append(row.id)
                    continue
                self.metrics.failures.labels(territory=source.label).inc()
                delay = await self._record_failure(session, row.id, row.attempts + 1, result)
                batch.retry_in = delay if batch.retry_in is None else min(batch.retry_in, delay)
                if isinstance(result, NoStreamResponseError):
                    # The server may have lost its streams (restarted without its store):
                    # check them all again on the next pass.
                    self._streams_ready.clear()
                if not _event_specific(result) or not self._bus.connected:
                    # Not this event's fault: stop the pass rather than fail one batch after
                    # another; the next pass comes after the poll interval.
                    batch.halted = True
            if sent:
                await self._publish_live(due, outgoing, results)
                await session.execute(
                    update(outbox).where(outbox.c.id.in_(sent)).values(sent_at=func.now())
                )
            drained = (
                len(due) < self._batch_size
                and len(sent) == len(due)
                and source.label not in self._retry_at
            )
            if drained:
                # Nothing due is left and nothing waits for a retry: no scan to say so.
                self._set_gauges(source, 0, 0.0)
            elif self._gauges_stale(source):
                # Counting the backlog costs a scan of it: at most once a second.
                await self._refresh_gauges(session, source)
        # Counted after the commit: an event is "published" once it is also marked sent.
        batch.published = len(sent)
        if sent:
            self.metrics.published.labels(territory=source.label).inc(len(sent))
        return batch

    async def _publish_live(
        self, due: Sequence[Any], outgoing: Sequence[OutgoingDocument], results: Sequence[object]
    ) -> None:
        """The realtime copy of each published event with an audience: one message per user on
        `rt.user.<id>.<domain>.<action>`, into the realtime stream the live feeds read. Sent only
        once JetStream holds the event, so a live subscriber never sees what the stream lost; a
        republish after a crash repeats the same copy ids, which the stream drops."""
        copies: list[OutgoingDocument] = []
        for row, document, result in zip(due, outgoing, results, strict=True):
            audience = audience_of(row.headers)
            if isinstance(result, Exception) or not audience:
                continue
            try:
                parsed = parse_subject(row.subject)
                if parsed.domain is None:
                    continue
                subjects = {
                    user: realtime_user_subject(user, parsed.domain, parsed.action)
                    for user in audience
                }
            except ValueError as exc:
                log.warning("outbox event %s: no realtime copy sent: %s", row.id, exc)
                continue
            copies.extend(
                OutgoingDocument(subject, document.payload, f"{row.id}:{user}", document.headers)
                for user, subject in subjects.items()
            )
        if not copies:
            return
        for copy, outcome in zip(copies, await self._bus.publish_live(copies), strict=True):
            if isinstance(outcome, Exception):  # the durable event is out: no failure of it
                log.warning("realtime copy %s not sent: %s", copy.event_id, outcome)

    async def _record_failure(
        self, session: AsyncSession, row_id: uuid.UUID, attempts: int, exc: Exception
    ) -> float:
        """Note the failure on the row, due again after a back-off (returned, in seconds)."""
        delay = backoff_seconds(attempts, base=self._poll_interval, cap=self._max_backoff)
        log.warning("outbox event %s not published (attempt %d): %s", row_id, attempts, exc)
        await session.execute(
            update(outbox)
            .where(outbox.c.id == row_id)
            .values(
                attempts=attempts,
                last_error=(f"{type(exc).__name__}: {exc}")[:_ERROR_TEXT_MAX],
                available_at=func.now() + timedelta(seconds=delay),
            )
        )
        return delay

    def _purge_due(self, source: OutboxSource) -> bool:
        last = self._purged_at.get(source.label)
        return last is None or time.monotonic() - last > _PURGE_INTERVAL_SECONDS

    async def _purge(self, source: OutboxSource) -> int:
        """Delete published rows past the retention (a bounded batch, so no long lock)."""
        self._purged_at[source.label] = time.monotonic()
        expired = (
            select(outbox.c.id)
            .where(outbox.c.sent_at < func.now() - self._retention)
            .limit(_PURGE_BATCH)
            .scalar_subquery()
        )
        async with self._db.pod_session(source.pod_id, source.schema) as session:
            result = await session.execute(delete(outbox).where(outbox.c.id.in_(expired)))
        removed = int(getattr(result, "rowcount", 0) or 0)
        if removed:
            log.info("outbox relay removed %d published events from %s", removed, source.schema)
        return removed

    def _gauges_stale(self, source: OutboxSource) -> bool:
        return time.monotonic() - self._gauges_refreshed.get(source.label, 0.0) > 1.0

    async def _refresh_gauges(self, session: AsyncSession, source: OutboxSource) -> None:
        backlog, oldest_age = (
            await session.execute(
                select(
                    func.count(),
                    func.coalesce(
                        func.extract("epoch", func.now() - func.min(outbox.c.created_at)), 0
                    ),
                ).where(outbox.c.sent_at.is_(None))
            )
        ).one()
        self._set_gauges(source, int(backlog), float(oldest_age))

    def _set_gauges(self, source: OutboxSource, backlog: int, oldest_age: float) -> None:
        self._gauges_refreshed[source.label] = time.monotonic()
        self.metrics.backlog.labels(territory=source.label).set(backlog)
        # Counters of every outbox exist from its first pass (at 0), so rates and alerts on
        # publish failures see a series before the first failure happens.
        self.metrics.published.labels(territory=source.label)
        self.metrics.failures.labels(territory=source.label)
        self.metrics.lag.labels(territory=source.label).set(oldest_age)


def _outbox_lock(source: OutboxSource) -> Any:
    """The advisory lock one relay holds while it publishes from `source`'s outbox."""
    return func.hashtext("unityplan.outbox:" + source.schema)


# An event waits while an earlier one of its subject waits for a retry: events of a subject
# are published in the order they were written, those of other subjects go on meanwhile.
_delayed = outbox.alias("delayed")
_after_a_delayed_event = (
    select(_delayed.c.id)
    .where(
        _delayed.c.sent_at.is_(None),
        _delayed.c.available_at > func.now(),
        _delayed.c.subject == outbox.c.subject,
        _delayed.c.created_at < outbox.c.created_at,
    )
    .exists()
)


def _event_specific(exc: Exception) -> bool:
    """Whether the failure concerns this event only (the next one may well succeed)."""
    return isinstance(exc, _EVENT_SPECIFIC_ERRORS)
