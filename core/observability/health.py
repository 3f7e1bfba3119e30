"""Readiness checks of a service's dependencies: PostgreSQL per pod, NATS and Redis.

A check is an async callable that returns when the dependency works and raises otherwise.
The report names each dependency with `ok` or the kind of failure, never addresses or URLs.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import TypeAlias, TypeVar, Union

from nats.aio.client import Client as NatsClient
from prometheus_client import CollectorRegistry, Gauge
from redis.asyncio import Redis
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine

from core.background import cancelled_meanwhile, stop_tasks
from core.db import Database

logger = logging.getLogger(__name__)

Check = Callable[[], Awaitable[None]]
T = TypeVar("T")
# The client itself, or a function returning it once the service's start-up has created it.
Provider: TypeAlias = Union[T, Callable[[], T | None]]  # noqa: UP007 - a generic alias

DEFAULT_CHECK_TIMEOUT_SECONDS = 2.0


def _resolve(provider: object, kind: type[T]) -> T:
    client = provider() if callable(provider) and not isinstance(provider, kind) else provider
    if not isinstance(client, kind):
        raise ConnectionError("not started")
    return client


async def run_checks(
    checks: Mapping[str, Check], *, timeout_seconds: float = DEFAULT_CHECK_TIMEOUT_SECONDS
) -> tuple[bool, dict[str, dict[str, str]]]:
    """Run every check at once, each bounded by `timeout_seconds`: (all ok, status per name)."""

    async def one(name: str, check: Check) -> dict[str, str]:
        try:
            await asyncio.wait_for(check(), timeout_seconds)
        except TimeoutError:
            logger.warning("readiness check %s timed out after %ss", name, timeout_seconds)
            return {"status": "error", "error": "timeout"}
        except Exception as exc:  # any failure means "not ready"; the report says which kind
            logger.warning("readiness check %s failed: %s: %s", name, type(exc).__name__, exc)
            return {"status": "error", "error": type(exc).__name__}
        return {"status": "ok"}

    names = list(checks)
    results = await asyncio.gather(*(one(name, checks[name]) for name in names))
    report = dict(zip(names, results, strict=True))
    return all(result["status"] == "ok" for result in results), report


def engine_check(engine: AsyncEngine) -> Check:
    """`SELECT 1` on a fresh or pooled connection of `engine`."""

    async def check() -> None:
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    return check


def database_checks(db: Database) -> dict[str, Check]:
    """One check per configured pod, named `postgres:<pod>` (engines are created lazily)."""
    return {f"postgres:{pod}": _pod_check(db, pod) for pod in db.pods}


def _pod_check(db: Database, pod: str) -> Check:
    async def check() -> None:
        await engine_check(db.engine(pod))()

    return check


def nats_check(client: Provider[NatsClient]) -> Check:
    """Connected, and a round trip to the server (PING/PONG) completes."""

    async def check() -> None:
        nats = _resolve(client, NatsClient)
        if not nats.is_connected:
            raise ConnectionError("NATS not connected")
        await nats.flush(timeout=int(DEFAULT_CHECK_TIMEOUT_SECONDS))

    return check


def redis_check(client: Provider[Redis]) -> Check:
    """Redis answers PING."""

    async def check() -> None:
        await _resolve(client, Redis).ping()

    return check


READINESS_PROBE_SECONDS = 15.0


class ReadinessGauge:
    """`service_dependency_ready{dependency}`: 1 when the dependency's check passed last time.

    Refreshed by every /ready request and by a background probe, so Prometheus sees a lost
    dependency even where nothing calls /ready (a compose stack has no orchestrator probing it).
    """

    def __init__(
        self,
        registry: CollectorRegistry,
        checks: Mapping[str, Check],
        *,
        interval_seconds: float = READINESS_PROBE_SECONDS,
        timeout_seconds: float = DEFAULT_CHECK_TIMEOUT_SECONDS,
        degrading: frozenset[str] = frozenset(),
    ) -> None:
        self.checks = dict(checks)
        # Dependencies whose loss degrades the service without taking it out of rotation.
        self.degrading = degrading
        self.degraded: list[str] = []
        self.interval_seconds = interval_seconds
        self.timeout_seconds = timeout_seconds
        self.ready = Gauge(
            "service_dependency_ready",
            "1 when the service's last check of the dependency passed, else 0",
            ["dependency"],
            registry=registry,
        )
        self._task: asyncio.Task[None] | None = None

    def record(self, report: Mapping[str, Mapping[str, str]]) -> None:
        for name, result in report.items():
            self.ready.labels(name).set(1 if result.get("status") == "ok" else 0)

    async def check(self) -> tuple[bool, dict[str, dict[str, str]]]:
        """(ready, status per dependency): ready while every dependency outside `degrading`
        works; `degraded` names the failing others."""
        _, report = await run_checks(self.checks, timeout_seconds=self.timeout_seconds)
        self.record(report)
        failing = [name for name, result in report.items() if result["status"] != "ok"]
        self.degraded = sorted(name for name in failing if name in self.degrading)
        return all(name in self.degrading for name in failing), report

    async def _probe(self) -> None:
        while True:
            await self.check()
            if cancelled_meanwhile():  # a check reported the cancellation as its failure
                raise asyncio.CancelledError
            await asyncio.sleep(self.interval_seconds)

    def start(self) -> None:
        if self.checks and (self._task is None or self._task.done()):
            self._task = asyncio.create_task(self._probe(), name="readiness-probe")

    async def stop(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            await stop_tasks([task])
