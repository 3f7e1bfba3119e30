"""What wakes the outbox relay: a NOTIFY from every outbox insert, naming its schema (revisions
g0006 and t0010), heard on one connection per pod; and a slow sweep, one statement per pod
over every outbox, finding what a missed notification left behind and what is due for purging.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from functools import partial
from typing import TYPE_CHECKING, Any

import asyncpg
from sqlalchemy import text
from sqlalchemy.dialects import postgresql
from sqlalchemy.engine import make_url

if TYPE_CHECKING:
    from core.db.database import Database
    from core.events.relay import OutboxSource

log = logging.getLogger(__name__)

OUTBOX_CHANNEL = "unityplan_outbox"
_CONNECT_TIMEOUT_SECONDS = 5.0
# How long a pod whose listening connection failed is left before trying again.
_RELISTEN_SECONDS = 5.0
# Outboxes per sweep statement: bounds its size (and its bind parameters) with many territories.
_SWEEP_CHUNK = 250


class OutboxListener:
    """One LISTEN connection per pod; remembers which schemas' outboxes got events."""

    def __init__(
        self, db: Database, *, on_notify: Callable[[], None], on_lost: Callable[[], None]
    ) -> None:
        self._db = db
        self._on_notify = on_notify
        self._on_lost = on_lost
        self._connections: dict[str, asyncpg.Connection] = {}
        self._attempted: dict[str, float] = {}
        self._notified: set[tuple[str, str]] = set()

    @property
    def listening(self) -> bool:
        """Whether every pod is listened to (otherwise the relay polls)."""
        return all(
            pod in self._connections and not self._connections[pod].is_closed()
            for pod in self._db.pods
        )

    async def listen(self) -> bool:
        """Listen on every pod not listened to yet (at most every few seconds per pod); True if
        a pod is listened to since just now: notifications before that were missed."""
        started = False
        for pod in self._db.pods:
            connection = self._connections.get(pod)
            if connection is not None and not connection.is_closed():
                continue
            last = self._attempted.get(pod)
            if last is not None and time.monotonic() - last < _RELISTEN_SECONDS:
                continue
            self._attempted[pod] = time.monotonic()
            url = make_url(self._db.engine(pod).url).set(drivername="postgresql")
            connection = None
            try:
                connection = await asyncpg.connect(
                    url.render_as_string(hide_password=False),
                    timeout=_CONNECT_TIMEOUT_SECONDS,
                    server_settings={"application_name": "unityplan:outbox-listener"},
                )
                await asyncio.wait_for(
                    connection.add_listener(OUTBOX_CHANNEL, partial(self._heard, pod)),
                    _CONNECT_TIMEOUT_SECONDS,
                )
            except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
                log.warning("outbox relay cannot listen on pod %s (polling instead): %s", pod, exc)
                if connection is not None:
                    connection.terminate()
                continue
            connection.add_termination_listener(partial(self._lost, pod))
            self._connections[pod] = connection
            started = True
        return started

    def take(self) -> set[tuple[str, str]]:
        """The (pod, schema) pairs notified since the last call."""
        notified, self._notified = self._notified, set()
        return notified

    async def close(self) -> None:
        connections, self._connections = self._connections, {}
        for connection in connections.values():
            if not connection.is_closed():
                try:
                    await connection.close(timeout=_CONNECT_TIMEOUT_SECONDS)
                except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError):
                    connection.terminate()

    def _heard(self, pod: str, _connection: Any, _pid: int, _channel: str, schema: str) -> None:
        self._notified.add((pod, schema))
        self._on_notify()

    def _lost(self, pod: str, *_: Any) -> None:
        self._connections.pop(pod, None)
        self._attempted.pop(pod, None)
        self._on_lost()  # the relay sweeps (and polls until listening again)


@dataclass
class SweepFindings:
    """The outboxes holding events due for publishing, and those with rows past retention."""

    due: list[OutboxSource] = field(default_factory=list)
    expired: list[OutboxSource] = field(default_factory=list)


async def sweep(
    db: Database, sources: Sequence[OutboxSource], retention: timedelta
) -> SweepFindings:
    """Which outboxes need the relay, found with one statement per pod (per chunk of outboxes).

    A statement that fails (a schema being migrated, say) reports its outboxes as due, so the
    relay's per-outbox pass finds and reports the broken one while the others go on.
    """
    findings = SweepFindings()
    by_pod: dict[str, list[OutboxSource]] = {}
    for source in sources:
        by_pod.setdefault(source.pod_id, []).append(source)
    for pod, pod_sources in by_pod.items():
        for start in range(0, len(pod_sources), _SWEEP_CHUNK):
            chunk = pod_sources[start : start + _SWEEP_CHUNK]
            try:
                async with db.pod_session(pod, chunk[0].schema) as session:
                    rows = (await session.execute(_sweep_statement(chunk, retention))).all()
            except Exception as exc:
                log.debug("outbox sweep on pod %s failed, passing each outbox: %s", pod, exc)
                findings.due.extend(chunk)
                continue
            for row in rows:
                if row.due:
                    findings.due.append(chunk[row.n])
                if row.expired:
                    findings.expired.append(chunk[row.n])
    return findings


def _sweep_statement(sources: Sequence[OutboxSource], retention: timedelta) -> Any:
    return text(_sweep_sql(tuple(source.schema for source in sources), retention.total_seconds()))


_DIALECT = postgresql.dialect()  # type: ignore[no-untyped-call]  # SQLAlchemy's own signature


@functools.lru_cache(maxsize=64)
def _sweep_sql(schemas: tuple[str, ...], retention_seconds: float) -> str:
    """The sweep of these outboxes as SQL, built once per set of schemas: composing and
    compiling hundreds of subqueries on every sweep would cost more than running them.

    The statement takes no parameters, so PostgreSQL plans it once per connection (a
    parameterised one is planned afresh on its first five runs on each connection: about
    50 ms for 250 outboxes).
    """
    quote = _DIALECT.identifier_preparer.quote_schema
    # A number from the settings, written as a literal for the reason above.
    retention = f"interval '{float(retention_seconds)!r} seconds'"
    # Schema names come from the territory registry (validated codes), quoted here.
    parts = [
        f"SELECT {index} AS n, "  # noqa: S608 - quoted registry schemas, no user input
        f"EXISTS (SELECT 1 FROM {quote(schema)}.outbox "
        "WHERE sent_at IS NULL AND available_at <= now()) AS due, "
        f"EXISTS (SELECT 1 FROM {quote(schema)}.outbox "
        f"WHERE sent_at < now() - {retention}) AS expired"
        for index, schema in enumerate(schemas)
    ]
    return "\nUNION ALL\n".join(parts)
