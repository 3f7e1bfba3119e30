"""The embedded stack: PostgreSQL, NATS and Redis on 127.0.0.1, started, described and stopped.

Whatever it starts it also stops: on `stop()`, at interpreter exit, and on SIGTERM. A server
left behind by a crashed run is found through its pid record and stopped (or reused, when it
was deliberately left running by `unityplan infra up`).
"""

from __future__ import annotations

import atexit
import os
import signal
import subprocess
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from types import FrameType
from typing import IO

from core.errors import InfrastructureError
from unityplan.devstack.processes import (
    ProcessRecord,
    log_tail,
    port_in_use,
    refuse_a_running_stack,
    spawn,
    terminate,
)
from unityplan.devstack.servers import (
    SERVER_TYPES,
    EmbeddedServer,
    NatsServer,
    PostgresServer,
    RedisServer,
)

ALL_SERVICES: tuple[str, ...] = ("postgres", "nats", "redis")
START_TIMEOUT_SECONDS = 60.0


@dataclass(frozen=True)
class StackUrls:
    """Where the servers listen; empty for a service that was not asked for."""

    postgres_admin_url: str = ""  # postgresql://postgres@127.0.0.1:PORT/postgres
    database_url: str = ""  # postgresql+asyncpg://postgres@127.0.0.1:PORT/unityplan
    nats_url: str = ""
    redis_url: str = ""


@dataclass
class _Started:
    server: EmbeddedServer
    process: subprocess.Popen[bytes]
    log: IO[bytes]


class EmbeddedStack:
    """PostgreSQL, NATS and Redis as child processes, with their data under `root`."""

    def __init__(
        self,
        root: Path,
        *,
        postgres_port: int,
        nats_port: int,
        redis_port: int,
        nats_monitoring_port: int | None = None,
    ) -> None:
        self.root = Path(root).absolute()
        self._servers: dict[str, EmbeddedServer] = {
            "postgres": PostgresServer(self.root, postgres_port),
            "nats": NatsServer(self.root, nats_port, monitoring_port=nats_monitoring_port),
            "redis": RedisServer(self.root, redis_port),
        }
        self._started: dict[str, _Started] = {}
        self._reused: set[str] = set()

    @property
    def started(self) -> list[str]:
        """The servers this stack started (and will stop), in start order."""
        return list(self._started)

    @property
    def reused(self) -> list[str]:
        """Servers left running by `unityplan infra up` that this stack uses but never stops."""
        return sorted(self._reused)

    def server(self, name: str) -> EmbeddedServer:
        return self._servers[name]

    def start(self, services: Sequence[str] = ALL_SERVICES) -> StackUrls:
        """Start `services` and block until each accepts connections; their URLs."""
        unknown = sorted(set(services) - set(self._servers))
        if unknown:
            raise ValueError(f"Unknown embedded service(s): {', '.join(unknown)}")
        (self.root / "logs").mkdir(parents=True, exist_ok=True)
        _track(self)
        try:
            wanted = [
                self._servers[name]
                for name in ALL_SERVICES
                if name in services and name not in self._started and name not in self._reused
            ]
            to_start = [server for server in wanted if not self._adopt_or_clear(server)]
            for server in to_start:
                self._check_port(server)
            for server in to_start:
                server.prepare()
                self._spawn(server)
            self._wait_ready(to_start)
            for server in wanted:
                server.after_start()
        except BaseException:
            self.stop()
            raise
        return self.urls()

    def restart(self, name: str) -> None:
        """Start server `name` again after it stopped on its own, leaving the others as they
        are; InfrastructureError when it cannot start."""
        started = self._started.pop(name, None)
        if started is not None:
            started.log.close()
        server = self._servers[name]
        if self._adopt_or_clear(server):
            return
        self._check_port(server)
        server.prepare()
        self._spawn(server)
        self._wait_ready([server])
        server.after_start()

    def urls(self) -> StackUrls:
        up = set(self._started) | self._reused
        postgres = self._servers["postgres"]
        assert isinstance(postgres, PostgresServer)
        return StackUrls(
            postgres_admin_url=postgres.admin_url() if "postgres" in up else "",
            database_url=postgres.url() if "postgres" in up else "",
            nats_url=self._servers["nats"].url() if "nats" in up else "",
            redis_url=self._servers["redis"].url() if "redis" in up else "",
        )

    def exited(self) -> list[tuple[str, int]]:
        """Servers this stack started that have since stopped on their own, with exit codes."""
        return [
            (name, code)
            for name, started in self._started.items()
            if (code := started.process.poll()) is not None
        ]

    def stop(self) -> None:
        """Stop every server this stack started, newest first, and wait until they are gone."""
        for name in reversed(list(self._started)):
            self.stop_server(name)
        self._reused.clear()
        _untrack(self)

    def stop_server(self, name: str) -> None:
        """Stop the one server `name` this stack started and wait until it is gone; the
        others keep running, and `restart(name)` starts it again on the same data."""
        started = self._started.pop(name, None)
        if started is None:
            return
        terminate(
            started.process.pid, stop_signal=started.server.stop_signal, child=started.process
        )
        started.log.close()
        record = ProcessRecord.load(self.root, name)
        if record is not None and record.pid == started.process.pid:
            record.forget(self.root)

    def detach(self) -> None:
        """Leave the started servers running after we exit; later stacks on `root` reuse them."""
        for name, started in self._started.items():
            record = ProcessRecord.load(self.root, name)
            if record is not None:
                replace(record, detached=True).save(self.root)
            started.log.close()
        self._started.clear()
        self._reused.clear()
        _untrack(self)

    def _adopt_or_clear(self, server: EmbeddedServer) -> bool:
        """Deal with a server of ours already recorded on this root; whether it is reused."""
        record = ProcessRecord.load(self.root, server.name)
        if record is None:
            return False
        if record.is_alive():
            if record.detached and record.port == server.port and server.accepts_connections():
                self._reused.add(server.name)
                return True
            refuse_a_running_stack(record, self.root)
            # Left over from a run that crashed (or on another port): it would hold the data
            # directory and maybe the port, so it goes.
            terminate(record.pid, stop_signal=server.stop_signal)
        record.forget(self.root)
        return False

    def _check_port(self, server: EmbeddedServer) -> None:
        if port_in_use(server.port):
            raise InfrastructureError(
                f"Cannot start the embedded {server.label}: port {server.port} on 127.0.0.1 "
                f"is already in use. Set {server.port_variable} to a free port, or set "
                f"{server.url_variable} to use a {server.label} server you already run."
            )

    def _spawn(self, server: EmbeddedServer) -> None:
        log = server.log_path.open("ab")
        try:
            process = spawn(server.command(), log=log, cwd=self.root, account=server.account)
        except BaseException:
            log.close()
            raise
        self._started[server.name] = _Started(server, process, log)
        ProcessRecord(
            name=server.name,
            pid=process.pid,
            port=server.port,
            executable=str(server.executable()),
            owner=os.getpid(),
        ).save(self.root)

    def _wait_ready(self, servers: Sequence[EmbeddedServer]) -> None:
        pending = list(servers)
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while pending:
            for server in list(pending):
                code = self._started[server.name].process.poll()
                if code is not None:
                    raise InfrastructureError(
                        f"The embedded {server.label} stopped during start-up (exit code {code}). "
                        f"If its port {server.port} is taken, set {server.port_variable}. "
                        f"Last lines of {server.log_path}:\n{log_tail(server.log_path)}"
                    )
                if server.accepts_connections():
                    pending.remove(server)
            if pending and time.monotonic() > deadline:
                names = ", ".join(server.label for server in pending)
                raise InfrastructureError(
                    f"The embedded {names} did not accept connections within "
                    f"{START_TIMEOUT_SECONDS:.0f}s; see the logs in {self.root / 'logs'}"
                )
            if pending:
                time.sleep(0.05)


def recorded_servers(root: Path) -> list[tuple[ProcessRecord, bool]]:
    """The servers recorded under `root`, each with whether it is still running."""
    found = []
    for name in ALL_SERVICES:
        record = ProcessRecord.load(Path(root).absolute(), name)
        if record is not None:
            found.append((record, record.is_alive()))
    return found


def stop_recorded(root: Path) -> list[str]:
    """Stop every server recorded under `root` (e.g. left by `infra up`); the names stopped.

    Servers of a `unityplan dev` that still runs are its own to stop: InfrastructureError."""
    root = Path(root).absolute()
    stopped = []
    for record, _ in recorded_servers(root):
        refuse_a_running_stack(record, root)
    for record, alive in reversed(recorded_servers(root)):
        if alive:
            terminate(record.pid, stop_signal=SERVER_TYPES[record.name].stop_signal)
            stopped.append(record.name)
        record.forget(root)
    return stopped


# Stacks with servers running, stopped at exit even when the caller forgot or crashed.
_live: list[EmbeddedStack] = []
_live_lock = threading.Lock()
_exit_hooks_installed = False


def _track(stack: EmbeddedStack) -> None:
    global _exit_hooks_installed
    with _live_lock:
        if stack not in _live:
            _live.append(stack)
        if not _exit_hooks_installed:
            atexit.register(_stop_live_stacks)
            _exit_on_sigterm()
            _exit_hooks_installed = True


def _untrack(stack: EmbeddedStack) -> None:
    with _live_lock:
        if stack in _live:
            _live.remove(stack)


def _stop_live_stacks() -> None:
    with _live_lock:
        stacks = list(reversed(_live))
    for stack in stacks:
        stack.stop()


def _exit_on_sigterm() -> None:
    """Turn SIGTERM into SystemExit so `finally` blocks and atexit run and stop the servers.

    Only when nobody else handles SIGTERM, and only from the main thread (signal's rule).
    """
    if threading.current_thread() is not threading.main_thread():
        return
    if signal.getsignal(signal.SIGTERM) in (signal.SIG_DFL, None):
        signal.signal(signal.SIGTERM, _raise_system_exit)


def _raise_system_exit(signum: int, frame: FrameType | None) -> None:
    raise SystemExit(128 + signum)
