"""Prometheus metrics of the outbox relay, labelled by territory (`global`: the global schema)."""

from __future__ import annotations

from dataclasses import dataclass
from weakref import WeakKeyDictionary

from prometheus_client import REGISTRY, CollectorRegistry, Counter, Gauge

GLOBAL_LABEL = "global"

_BY_REGISTRY: WeakKeyDictionary[CollectorRegistry, OutboxMetrics] = WeakKeyDictionary()


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
