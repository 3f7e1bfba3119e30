"""Python runtime metrics of a service: event-loop lag, next to the process and GC collectors.

The loop-lag probe sleeps a fixed interval and measures how late it wakes up: whatever ran
on the loop in between (a blocking call, a long CPU-bound step) shows up as lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import time

from prometheus_client import CollectorRegistry, Gauge, Histogram

PROBE_INTERVAL_SECONDS = 0.5
# Lag worth seeing starts around a millisecond; beyond a second the service is unresponsive.
_LAG_BUCKETS = (0.001, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0)


class EventLoopMonitor:
    """Samples the running loop's lag into `python_event_loop_lag_seconds` (gauge + histogram)."""

    def __init__(
        self, registry: CollectorRegistry, *, interval_seconds: float = PROBE_INTERVAL_SECONDS
    ) -> None:
        self.interval_seconds = interval_seconds
        self.lag = Gauge(
            "python_event_loop_lag_seconds",
            "How late the event loop ran the latest probe scheduled on it",
            registry=registry,
        )
        self.lag_histogram = Histogram(
            "python_event_loop_lag_distribution_seconds",
            "How late the event loop ran each probe scheduled on it",
            buckets=_LAG_BUCKETS,
            registry=registry,
        )
        self.tasks = Gauge(
            "python_asyncio_tasks",
            "Tasks alive on the service's event loop",
            registry=registry,
        )
        self._task: asyncio.Task[None] | None = None

    def record(self, lag_seconds: float) -> None:
        lag = max(0.0, lag_seconds)
        self.lag.set(lag)
        self.lag_histogram.observe(lag)

    async def _probe(self) -> None:
        while True:
            started = time.perf_counter()
            await asyncio.sleep(self.interval_seconds)
            self.record(time.perf_counter() - started - self.interval_seconds)

    def start(self) -> None:
        """Start probing on the running loop (idempotent)."""
        if self._task is None or self._task.done():
            self.record(0.0)
            # Counted when scraped, not at every probe: with thousands of connections there
            # are thousands of tasks to walk.
            loop = asyncio.get_running_loop()
            self.tasks.set_function(lambda: len(asyncio.all_tasks(loop)))
            self._task = asyncio.create_task(self._probe(), name="event-loop-monitor")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
