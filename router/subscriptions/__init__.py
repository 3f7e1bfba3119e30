"""Federated subscriptions: the upstream WebSocket client, de-duplication and fan-out,
and the per-client stream that completes every event across subgraphs."""

from router.subscriptions.hub import (
    Ended,
    Mailbox,
    SlowConsumer,
    SubscriptionHub,
    UpstreamEvent,
    UpstreamKey,
)
from router.subscriptions.lifetime import SessionWatch, Viewer
from router.subscriptions.service import StreamError, SubscriptionService

__all__ = [
    "Ended",
    "Mailbox",
    "SessionWatch",
    "SlowConsumer",
    "StreamError",
    "SubscriptionHub",
    "SubscriptionService",
    "UpstreamEvent",
    "UpstreamKey",
    "Viewer",
]
