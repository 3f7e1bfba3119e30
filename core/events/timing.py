"""Where an event's time goes on its way to a live subscriber: a timestamp per hop.

The CloudEvents `time` says when the event was written (in the transaction of its change); the
outbox relay adds our extension attribute `publishtime` as it publishes; a subgraph notes when
its live feed received the event and when the subscription's answer was ready, and sends both
with the answer (`extensions.eventTiming`); the router adds its own two. All are milliseconds
since the Unix epoch, so a client on the same clock reads the whole breakdown.
"""

from __future__ import annotations

import time
from contextvars import ContextVar
from datetime import datetime
from typing import Any

import orjson

from core.events.cloudevents import format_time

# The CloudEvents extension attribute (lower-case letters only, as the spec asks for).
PUBLISH_TIME_ATTRIBUTE = "publishtime"
# The key of the GraphQL response extension carrying the timestamps.
TIMING_EXTENSION = "eventTiming"

# The hops in the order an event passes them; every one is a key of `eventTiming`.
WRITTEN = "written"
PUBLISHED = "published"
SUBGRAPH_RECEIVED = "subgraphReceived"
SUBGRAPH_SENT = "subgraphSent"
ROUTER_RECEIVED = "routerReceived"
ROUTER_SENT = "routerSent"
HOPS = (WRITTEN, PUBLISHED, SUBGRAPH_RECEIVED, SUBGRAPH_SENT, ROUTER_RECEIVED, ROUTER_SENT)

# The timing of the event a subscription resolver is answering, in the task running it.
_answering: ContextVar[dict[str, float] | None] = ContextVar("event_timing", default=None)


def now_ms() -> float:
    return time.time() * 1000.0


def epoch_ms(moment: datetime) -> float:
    return moment.timestamp() * 1000.0


def with_publish_time(document: bytes, moment: datetime) -> bytes:
    """A serialized CloudEvent (a JSON object) with `publishtime` set to `moment`.

    Appended to the stored text rather than decoded and encoded again: the relay publishes
    events as stored (the stored text never carries one, so a republish is stamped afresh).
    """
    stripped = document.rstrip()
    if not stripped.endswith(b"}"):
        raise ValueError("A CloudEvent document is a JSON object")
    attribute = orjson.dumps({PUBLISH_TIME_ATTRIBUTE: format_time(moment)})
    separator = b"" if stripped.endswith(b"{}") else b","
    return stripped[:-1] + separator + attribute[1:]


def note_received(written: datetime, published: datetime | None) -> None:
    """A subgraph's live feed hands an event to a subscription resolver (in its task)."""
    timing = {WRITTEN: epoch_ms(written), SUBGRAPH_RECEIVED: now_ms()}
    if published is not None:
        timing[PUBLISHED] = epoch_ms(published)
    _answering.set(timing)


def take_answer_timing() -> dict[str, Any] | None:
    """The timing of the event just answered, with the moment the answer is ready, once."""
    timing = _answering.get()
    if timing is None:
        return None
    _answering.set(None)
    return {**timing, SUBGRAPH_SENT: now_ms()}
