"""Prometheus metrics of the outbox relay (labelled by territory, `global` for the global
schema) and of consumers (labelled by consumer and outcome)."""

from __future__ import annotations

from dataclasses import dataclass
from weakref import WeakKeyDictionary

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

GLOBAL_LABEL = "global"

_BY_REGISTRY: WeakKeyDictionary[CollectorRegistry, OutboxMetrics] = WeakKeyDictionary()
_CONSUMERS_BY_REGISTRY: WeakKeyDictionary[CollectorRegistry, Counter] = WeakKeyDictionary()


class ConsumeOutcome:
    """Values of the `outcome` label of `events_consumed_total`."""

    HANDLED = "handled"  # the handler ran and its transaction committed
    DUPLICATE = "duplicate"  # already processed: acked without running the handler
    FAILED = "failed"  # the handler (or its commit) failed: retried after a delay
    MALFORMED = "malformed"  # not a CloudEvent: dropped


def consumed_counter(registry: CollectorRegistry | None = None) -> Counter:
    """`events_consumed_total{consumer, outcome}` on `registry` (the default one if None)."""
    registry = registry if registry is not None else REGISTRY
    existing = _CONSUMERS_BY_REGISTRY.get(registry)
    if existing is None:
        existing = Counter(
            "events_consumed_total",
            "Events delivered to a durable consumer, by outcome",
            ["consumer", "outcome"],
            registry=registry,
        )
        _CONSUMERS_BY_REGISTRY[registry] = existing
    return existing


@dataclass(frozen=True)
class OutboxMetrics:
    published: Counter
    failures: Counter
    backlog: Gauge
    lag: Gauge

    @classmethod
    def on(cls, registry: CollectorRegistry | None = None) -> OutboxMetrics:
        """The metrics registered on `registry` (the default one if None), registered once."""
        registry = registry if registry is not None else REGISTRY
        existing = _BY_REGISTRY.get(registry)
        if existing is not None:
            return existing
        metrics = cls(
            published=Counter(
                "outbox_published_total",
                "Events the outbox relay published to JetStream",
                ["territory"],
                registry=registry,
            ),
            failures=Counter(
                "outbox_publish_failures_total",
                "Failed attempts to publish an outbox event (retried with backoff)",
                ["territory"],
                registry=registry,
            ),
            backlog=Gauge(
                "outbox_backlog",
                "Outbox events not yet published",
                ["territory"],
                registry=registry,
            ),
            lag=Gauge(
                "outbox_lag_seconds",
                "Age of the oldest outbox event not yet published (0 when none)",
                ["territory"],
                registry=registry,
            ),
        )
        _BY_REGISTRY[registry] = metrics
        return metrics
