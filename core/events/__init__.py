"""Events over NATS JetStream: CloudEvents on `{scope}.{origin}.{domain}.{action}` subjects,
published through a transactional outbox and consumed by durable, idempotent consumers."""

from core.events.bus import EventBus
from core.events.cloudevents import Event, EventFormatError
from core.events.consumer import Consumer, Handler
from core.events.fanout import TerritoryConsumers
from core.events.metrics import OutboxMetrics
from core.events.outbox import enqueue
from core.events.relay import OutboxRelay, OutboxSource
from core.events.streams import (
    StreamSpec,
    delete_namespace_streams,
    drop_scratch_namespace,
    ensure_streams,
    stream_specs,
)
from core.events.subjects import (
    Namespace,
    Scope,
    Subject,
    cross_subject,
    global_subject,
    parse_subject,
    realtime_user_subject,
    territory_subject,
    validate_subject,
)
from core.events.tracecontext import capture_trace_context, restore_trace_context

__all__ = [
    "Consumer",
    "Event",
    "EventBus",
    "EventFormatError",
    "Handler",
    "Namespace",
    "OutboxMetrics",
    "OutboxRelay",
    "OutboxSource",
    "Scope",
    "StreamSpec",
    "Subject",
    "TerritoryConsumers",
    "capture_trace_context",
    "cross_subject",
    "delete_namespace_streams",
    "drop_scratch_namespace",
    "enqueue",
    "ensure_streams",
    "global_subject",
    "parse_subject",
    "realtime_user_subject",
    "restore_trace_context",
    "stream_specs",
    "territory_subject",
    "validate_subject",
]
