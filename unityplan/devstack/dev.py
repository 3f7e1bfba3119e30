"""`unityplan dev`: infrastructure, migrations, demo territory and admin, then every service.

Infrastructure comes from the configured URLs, else from the embedded servers. Ctrl-C or
SIGTERM stops, in reverse order, everything this run started; nothing is left running.
"""

from __future__ import annotations

import asyncio
import signal
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from types import FrameType
from typing import Any, TextIO
from urllib.parse import urlsplit, urlunsplit

from core.config import Settings
from core.errors import ConfigError, InfrastructureError, UnityPlanError
from unityplan.devstack import demo
from unityplan.devstack.replicas import ReplicaSet, plan_replicas
from unityplan.devstack.services import Console, ServiceRunner
from unityplan.devstack.stack import EmbeddedStack
from unityplan.registry import SERVICES, subgraphs

READY_MESSAGE = "UnityPlan dev stack is ready"


class StopRequested(BaseException):
    """Ctrl-C or SIGTERM. A BaseException, so that asyncio does not swallow it mid-migration."""


def _request_stop(signum: int, frame: FrameType | None) -> None:
    raise StopRequested(signal.Signals(signum).name)


@contextmanager
def _signals(handler: Callable[[int, FrameType | None], Any]) -> Iterator[None]:
    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def display_url(url: str) -> str:
    """`url` fit for printing: no password, and the plain `postgresql://` scheme."""
    parts = urlsplit(url.replace("postgresql+asyncpg://", "postgresql://", 1))
    if parts.password:
        netloc = parts.netloc.replace(f":{parts.password}@", ":***@", 1)
        parts = parts._replace(netloc=netloc)
    return urlunsplit(parts)


def start_infrastructure(
    settings: Settings, console: Console
) -> tuple[Settings, EmbeddedStack | None]:
    """Use each configured server, start the embedded one for each that is not configured."""
    configured = {
        "postgres": settings.database.url,
        "nats": settings.nats.url,
        "redis": settings.redis.url,
    }
    wanted = [name for name, url in configured.items() if not url]
    stack: EmbeddedStack | None = None
    overrides: dict[str, str] = {}
    if wanted:
        dev = settings.devstack
        stack = EmbeddedStack(
            dev.dir,
            postgres_port=dev.postgres_port,
            nats_port=dev.nats_port,
            redis_port=dev.redis_port,
        )
        console.line(f"Starting embedded {', '.join(wanted)} (data in {dev.dir}) ...")
        urls = stack.start(wanted)
        embedded = {
            "postgres": ("DATABASE_URL", urls.database_url),
            "nats": ("NATS_URL", urls.nats_url),
            "redis": ("REDIS_URL", urls.redis_url),
        }
        overrides = {embedded[name][0]: embedded[name][1] for name in wanted}
    effective = settings.replace(**overrides) if overrides else settings
    labels = {"postgres": "PostgreSQL", "nats": "NATS", "redis": "Redis"}
    urls_now = {
        "postgres": effective.database.url,
        "nats": effective.nats.url,
        "redis": effective.redis.url,
    }
    for name, label in labels.items():
        if name not in wanted:
            origin = "configured"
        elif stack is not None and name in stack.reused:
            origin = "embedded, already running (unityplan infra up)"
        else:
            origin = "embedded"
        console.line(f"  {label:<11} {display_url(urls_now[name]):<52} {origin}")
    return effective, stack


def _prepare_data(settings: Settings, console: Console) -> None:
    console.line("Applying migrations and provisioning the demo territory dk (Denmark) ...")
    asyncio.run(demo.migrate_and_provision(settings))
    console.line("  Migrations applied; territory dk (Denmark) is ready.")
    lines = asyncio.run(demo.bootstrap(settings))
    if lines is None:
        console.line("  Bootstrap admin and invitation: not available yet (no auth bootstrap).")
        return
    console.line("Bootstrap platform admin and invitation:")
    for line in lines:
        console.line(f"  {line}")


def _service_environment(settings: Settings) -> dict[str, str]:
    """What the service children must see so they use the same servers as this run."""
    return {
        "DATABASE_URL": settings.database.url,
        "NATS_URL": settings.nats.url,
        "REDIS_URL": settings.redis.url,
    }


def run_dev(settings: Settings, stream: TextIO, replicas: int = 1) -> int:
    """Run the whole stack until interrupted, each service `replicas` times (see
    `unityplan.devstack.replicas` for their ports); the process exit code."""
    console = Console(stream)
    stack: EmbeddedStack | None = None
    runner: ServiceRunner | None = None
    with _signals(_request_stop):
        try:
            # Before anything starts: a port clash is a configuration error, not a half stack.
            replica_sets = plan_replicas(settings.services, replicas)
            settings, stack = start_infrastructure(settings, console)
            _prepare_data(settings, console)
            runner = ServiceRunner(settings, _service_environment(settings), console)
            failed = _start_services(runner, console, replica_sets)
            missing = f" (without {', '.join(failed)}: see above)" if failed else ""
            console.line(f"{READY_MESSAGE}{missing}. Press Ctrl-C to stop.")
            console.line(
                "In another terminal, `.venv/bin/unityplan demo` shows it working "
                "(then the README's first section and docs/first-hour.md)."
            )
            return _supervise(runner, stack, console)
        except StopRequested as stop:
            console.line(f"{stop.args[0] if stop.args else 'Stop'} received: stopping ...")
            return 0
        except (InfrastructureError, ConfigError, UnityPlanError) as exc:
            console.line(f"Error: {exc}")
            return 1
        finally:
            # A second Ctrl-C must not cut the clean-up short and leave servers behind.
            signal.signal(signal.SIGINT, _still_stopping(console))
            signal.signal(signal.SIGTERM, _still_stopping(console))
            if runner is not None:
                runner.stop_all()
            if stack is not None:
                stack.stop()
            console.line("Stopped.")


def _start_services(
    runner: ServiceRunner, console: Console, replica_sets: list[ReplicaSet] | None = None
) -> list[str]:
    """Start every service of this checkout, in order, once per replica set (the configured
    ports alone by default); the names of those that failed.

    A service that cannot start is reported and skipped rather than taking the others down:
    while one is being worked on, the rest of the stack stays usable.
    """
    failed: list[str] = []
    sets: list[ReplicaSet | None] = list(replica_sets) if replica_sets else [None]
    # The subgraphs do not need each other: start them together, the routers after them.
    for group in (
        [service.name for service in subgraphs()],
        [service.name for service in SERVICES if not service.is_subgraph],
    ):
        launched = []
        for replica in sets:
            for service in group:
                name = service if replica is None else replica.label(service)
                console.line(f"Starting the {name} service ...")
                try:
                    launched.append(runner.launch(service, replica))
                except InfrastructureError as exc:
                    console.line(f"Error: {exc}")
                    failed.append(name)
        for name in launched:
            try:
                url = runner.wait_healthy(name)
            except InfrastructureError as exc:
                console.line(f"Error: {exc}")
                failed.append(name)
                continue
            console.line(f"  {name:<11} {url}/graphql")
    return failed


def _supervise(runner: ServiceRunner, stack: EmbeddedStack | None, console: Console) -> int:
    """Until Ctrl-C, start again any service or embedded server that stops on its own, after
    a pause that doubles while it keeps stopping (1 s up to a minute), saying so each time."""
    restarts = _Restarts()
    while True:
        servers = stack.exited() if stack is not None else []
        now = time.monotonic()
        for name, code in [*runner.exited(), *servers]:
            due = restarts.due(name, code, now, console)
            if not due:
                continue
            try:
                if stack is not None and any(name == server for server, _ in servers):
                    stack.restart(name)
                else:
                    runner.restart(name)
                console.line(f"{name} started again.")
            except Exception as exc:  # reported; the next exit check tries again later
                console.line(f"{name} could not start again: {exc}")
        time.sleep(0.2)


class _Restarts:
    """When each stopped process may start again: 1 s after it stopped, doubling for each
    restart within a minute of the previous one, at most 60 s."""

    def __init__(self) -> None:
        self._at: dict[str, float] = {}
        self._delay: dict[str, float] = {}
        self._last: dict[str, float] = {}

    def due(self, name: str, code: int, now: float, console: Console) -> bool:
        at = self._at.get(name)
        if at is None:
            recent = now - self._last.get(name, -1e9) < 60.0
            delay = min(self._delay.get(name, 0.5) * 2, 60.0) if recent else 1.0
            self._delay[name] = delay
            self._at[name] = now + delay
            console.line(f"{name} exited (code {code}); starting it again in {delay:.0f} s.")
            return False
        if now < at:
            return False
        del self._at[name]
        self._last[name] = now
        return True


def _still_stopping(console: Console) -> Callable[[int, FrameType | None], None]:
    def handler(signum: int, frame: FrameType | None) -> None:
        console.line("Still stopping; please wait.")

    return handler
