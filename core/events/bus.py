"""The connection to NATS JetStream: streams, publishing CloudEvents, starting durable consumers."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from types import TracebackType
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

import nats
import orjson
from nats.aio.client import Client as NatsClient
from nats.js import JetStreamContext
from nats.js.api import PubAck, StreamInfo
from prometheus_client import CollectorRegistry

from core.config import Settings
from core.errors import InfrastructureError
from core.events.cloudevents import Event
from core.events.consumer import Consumer, Handler
from core.events.fanout import TerritoryConsumers
from core.events.streams import ensure_streams, stream_specs, territory_stream_spec
from core.events.subjects import Namespace, validate_subject
from core.events.tracecontext import capture_trace_context, trace_headers

if TYPE_CHECKING:
    from core.db.database import Database

log = logging.getLogger(__name__)

MSG_ID_HEADER = "Nats-Msg-Id"


def redacted(url: str) -> str:
    """A server URL fit for logs: credentials removed."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    return f"{parts.scheme}://{host}:{parts.port}" if parts.port else f"{parts.scheme}://{host}"


@dataclass(frozen=True)
class OutgoingDocument:
    """A serialized CloudEvent to publish: its subject, JSON bytes, id and trace headers."""

    subject: str
    payload: bytes
    event_id: str
    headers: Mapping[str, str] | None = None


class EventBus:
    """One NATS connection with its JetStream context; reconnects by itself once connected."""

    def __init__(
        self,
        settings: Settings,
        db: Database | None = None,
        *,
        name: str = "unityplan",
        publish_timeout: float = 2.0,
        registry: CollectorRegistry | None = None,
    ) -> None:
        """`registry`: where consumers count events (`events_consumed_total`); default one if
        None."""
        self._settings = settings
        self._registry = registry
        self._db = db
        self._name = name
        self._publish_timeout = publish_timeout
        self.namespace = Namespace.from_settings(settings.nats)
        self._client: NatsClient | None = None
        self._js: JetStreamContext | None = None
        self._consumers: list[Consumer] = []
        self._fanouts: list[TerritoryConsumers] = []
        self._closing = False
        # Counts reconnections, so users can tell the server may have changed (lost streams).
        self.reconnections = 0

    # ------------------------------------------------------------------ connection

    async def connect(self, *, within_seconds: float = 5.0) -> None:
        """Connect, or raise `InfrastructureError` when NATS is not reached in `within_seconds`."""
        if self._client is not None and not self._client.is_closed:
            return
        url = self._settings.nats.url
        if not url:
            raise InfrastructureError("No NATS configured: set NATS_URL (or run `unityplan dev`)")
        client = NatsClient()
        try:
            # Unlimited reconnects keep an established connection alive through an outage;
            # the timeout bounds the first attempt, which would otherwise retry forever.
            await asyncio.wait_for(
                client.connect(
                    servers=[url],
                    name=self._name,
                    connect_timeout=max(1, min(2, int(within_seconds))),
                    reconnect_time_wait=1,
                    max_reconnect_attempts=-1,
                    error_cb=self._on_error,
                    disconnected_cb=self._on_disconnected,
                    reconnected_cb=self._on_reconnected,
                ),
                within_seconds,
            )
        except (TimeoutError, OSError, nats.errors.Error) as exc:
            await abandon(client)
            raise InfrastructureError(f"NATS is not reachable at {redacted(url)}") from exc
        self._client = client
        self._js = client.jetstream(timeout=self._publish_timeout)

    async def close(self) -> None:
        """Stop the consumers this bus started, then drain and close the connection."""
        fanouts, self._fanouts = self._fanouts, []
        for fanout in fanouts:
            await fanout.stop()
        consumers, self._consumers = self._consumers, []
        for consumer in consumers:
            await consumer.stop()
        client, self._client, self._js = self._client, None, None
        if client is not None and not client.is_closed:
            self._closing = True
            try:
                await asyncio.wait_for(client.drain(), 5.0)
            except (TimeoutError, nats.errors.Error, OSError):
                await abandon(client)
            finally:
                self._closing = False

    async def __aenter__(self) -> EventBus:
        await self.connect()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.close()

    @property
    def has_client(self) -> bool:
        """Whether `connect` succeeded and `close` has not been called (even if reconnecting)."""
        return self._client is not None and not self._client.is_closed

    @property
    def connected(self) -> bool:
        return self._client is not None and self._client.is_connected

    @property
    def client(self) -> NatsClient | None:
        """The NATS client (for readiness checks), None until connected."""
        return self._client

    @property
    def js(self) -> JetStreamContext:
        if self._js is None:
            raise InfrastructureError("Not connected to NATS")
        return self._js

    async def _on_error(self, exc: Exception) -> None:
        log.warning("NATS: %s", exc or type(exc).__name__)

    async def _on_disconnected(self) -> None:
        if not self._closing:
            log.warning("NATS disconnected; reconnecting")

    async def _on_reconnected(self) -> None:
        self.reconnections += 1
        log.info("NATS reconnected")

    # ------------------------------------------------------------------ streams

    async def ensure_streams(
        self, territory_codes: Iterable[str] | None = None
    ) -> list[StreamInfo]:
        """Create or update the global, cross-territory and territory streams.

        Without codes, every active territory of the registry gets its stream.
        """
        if territory_codes is None:
            territory_codes = (
                [t.code for t in await self._db.territories()] if self._db is not None else []
            )
        return await ensure_streams(self.js, stream_specs(self._settings.nats, territory_codes))

    async def ensure_territory_stream(self, code: str) -> StreamInfo:
        """The stream of one territory (for a territory provisioned while services run)."""
        spec = territory_stream_spec(self._settings.nats, code)
        return (await ensure_streams(self.js, [spec]))[0]

    # ------------------------------------------------------------------ publishing

    async def publish(self, event: Event, *, headers: Mapping[str, str] | None = None) -> PubAck:
        """Publish directly (not through the outbox), with the current trace context unless
        `headers` carries one. Prefer `core.events.enqueue` for events about a change."""
        return await self.publish_document(
            event.subject,
            event.to_dict(),
            event_id=str(event.id),
            headers=capture_trace_context() if headers is None else headers,
        )

    async def publish_document(
        self,
        subject: str,
        document: Mapping[str, Any],
        *,
        event_id: str,
        headers: Mapping[str, str] | None = None,
    ) -> PubAck:
        """Publish a serialized CloudEvent; JetStream drops a repeat of `event_id` within the
        duplicate window (the ack then says `duplicate`)."""
        wire_headers = {**trace_headers(headers), MSG_ID_HEADER: event_id}
        return await self.js.publish(
            self.namespace.wire_subject(validate_subject(subject)),
            orjson.dumps(document),
            headers=wire_headers,
            timeout=self._publish_timeout,
        )

    async def publish_documents(
        self, outgoing: Sequence[OutgoingDocument]
    ) -> list[PubAck | Exception]:
        """Publish several serialized CloudEvents pipelined (all sent, then all acks awaited),
        in order; one result per document, an exception where that one failed."""
        return await self._pipelined(outgoing, validate=True)

    async def publish_live(self, copies: Sequence[OutgoingDocument]) -> list[PubAck | Exception]:
        """The realtime copies of events (`rt.user.<id>.<domain>.<action>`, built by
        `realtime_user_subject`) into the realtime stream, pipelined like `publish_documents`:
        kept only briefly, for the live feeds (see `core.events.live`), which resume from it
        after a NATS outage. `event_id` must be unique per copy (JetStream drops repeats)."""
        return await self._pipelined(copies, validate=False)

    async def _pipelined(
        self, outgoing: Sequence[OutgoingDocument], *, validate: bool
    ) -> list[PubAck | Exception]:
        pending: list[asyncio.Future[PubAck] | Exception] = []
        for item in outgoing:
            try:
                subject = validate_subject(item.subject) if validate else item.subject
                pending.append(
                    await self.js.publish_async(
                        self.namespace.wire_subject(subject),
                        item.payload,
                        headers={**trace_headers(item.headers), MSG_ID_HEADER: item.event_id},
                        # No stall timeout: it would yield to the flusher after every message
                        # and send them one by one; a batch is far below the pending limit.
                        wait_stall=None,
                    )
                )
            except Exception as exc:  # recorded per document, like a failed ack
                pending.append(exc)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._publish_timeout
        results: list[PubAck | Exception] = []
        for future in pending:
            if isinstance(future, Exception):
                results.append(future)
                continue
            try:
                results.append(await asyncio.wait_for(future, max(0.0, deadline - loop.time())))
            except Exception as exc:  # a timeout, an API error, no stream
                results.append(exc)
        return results

    # ------------------------------------------------------------------ consuming

    async def consume(
        self,
        durable_name: str,
        subject_filter: str,
        handler: Handler,
        *,
        batch_size: int = 16,
        ack_wait_seconds: float = 30.0,
    ) -> Consumer:
        """Start a durable pull consumer; see `Consumer`. It stops when the bus closes."""
        consumer = self.consumer(
            durable_name,
            subject_filter,
            handler,
            batch_size=batch_size,
            ack_wait_seconds=ack_wait_seconds,
        )
        await consumer.start()
        self._consumers.append(consumer)
        return consumer

    def consumer(
        self,
        durable_name: str,
        subject_filter: str,
        handler: Handler,
        *,
        batch_size: int = 16,
        ack_wait_seconds: float = 30.0,
    ) -> Consumer:
        """A consumer not started: it handles the messages it is given (`Consumer.deliver`)."""
        if self._db is None:
            raise InfrastructureError("Consumers need the database: EventBus(settings, db)")
        return Consumer(
            js=self.js,
            db=self._db,
            namespace=self.namespace,
            durable_name=durable_name,
            subject_filter=subject_filter,
            handler=handler,
            batch_size=batch_size,
            ack_wait_seconds=ack_wait_seconds,
            max_retry_delay=self._settings.nats.outbox_max_backoff_seconds,
            registry=self._registry,
        )

    async def consume_territories(
        self,
        durable_prefix: str,
        subject_tail: str,
        handler: Handler,
        *,
        refresh_seconds: float = 5.0,
    ) -> TerritoryConsumers:
        """Consume `territory.<code>.<subject_tail>` (`user.registered`, `user.*`) in every
        active territory, including territories provisioned later (on the registry's change
        notification, and every `refresh_seconds` in case one went unheard); see
        `TerritoryConsumers`."""
        db = self._db
        if db is None:
            raise InfrastructureError("Consumers need the database: EventBus(settings, db)")
        fanout = TerritoryConsumers(
            self,
            db,
            durable_prefix=durable_prefix,
            subject_tail=subject_tail,
            handler=handler,
            refresh_seconds=refresh_seconds,
        )
        await fanout.start()
        self._fanouts.append(fanout)
        return fanout


async def abandon(client: NatsClient) -> None:
    """Close a client that failed or is being given up on, without waiting long for it."""
    try:
        await asyncio.wait_for(client.close(), 2.0)
    except (TimeoutError, nats.errors.Error, OSError):
        log.debug("NATS client did not close cleanly", exc_info=True)
