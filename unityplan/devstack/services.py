"""The services under `unityplan dev`: `unityplan serve <name>` children with prefixed output.

Each runs in its own process group (Ctrl-C reaches only the supervisor, which stops them in
order) and counts as started once its `/health` answers.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import IO, TextIO

import httpx

from core.config import Settings
from core.errors import InfrastructureError
from unityplan.devstack.processes import (
    ProcessRecord,
    port_in_use,
    refuse_a_running_stack,
    terminate,
    venv_executable,
)
from unityplan.devstack.replicas import PORT_VARIABLES, ReplicaSet
from unityplan.registry import SERVICES, registered

# Start order, the registry's: the router composes the subgraphs, so it comes last.
SERVICE_ORDER: tuple[str, ...] = tuple(service.name for service in SERVICES)
HEALTH_TIMEOUT_SECONDS = 60.0


def service_port(settings: Settings, name: str) -> int:
    return registered(name).port(settings)


def _serve_command(name: str) -> list[str]:
    script = venv_executable("unityplan")
    if script is not None:
        return [str(script), "serve", name]
    return [sys.executable, "-c", "from unityplan.cli import main; main()", "serve", name]


class Console:
    """Line-oriented output shared by the supervisor and the service output pumps."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream
        self._lock = threading.Lock()

    def line(self, text: str = "") -> None:
        with self._lock:
            self._stream.write(text + "\n")
            self._stream.flush()


@dataclass
class _Service:
    name: str
    port: int
    process: subprocess.Popen[bytes]
    pump: threading.Thread
    service: str = ""
    replica: ReplicaSet | None = None


class ServiceRunner:
    """Starts services as children, relays their output, and stops every one it started."""

    def __init__(self, settings: Settings, env: Mapping[str, str], console: Console) -> None:
        self._settings = settings
        self._env = {**os.environ, **env, "PYTHONUNBUFFERED": "1"}
        self._console = console
        self._services: list[_Service] = []
        # Pid records beside the embedded servers' ones: a crashed run's services get cleared.
        self._records = settings.devstack.dir.absolute()

    def base_url(self, name: str) -> str:
        host = self._settings.services.host
        if host in ("0.0.0.0", "::", ""):  # noqa: S104 - only to reach a wildcard bind locally
            host = "127.0.0.1"
        launched = [service.port for service in self._services if service.name == name]
        port = launched[0] if launched else service_port(self._settings, name)
        return f"http://{host}:{port}"

    def launch(self, service: str, replica: ReplicaSet | None = None) -> str:
        """Start `service` (of `replica`'s set, else on the configured port) without waiting for
        it (see `wait_healthy`); the name it runs under (`auth`, `auth-2`, ...)."""
        name = service if replica is None else replica.label(service)
        port = service_port(self._settings, service) if replica is None else replica.ports[service]
        env = self._env if replica is None else {**self._env, **replica.environment()}
        self._clear_stale(name)
        if port_in_use(port):
            raise InfrastructureError(
                f"Cannot start the {name} service: port {port} is already in use. "
                f"Set {PORT_VARIABLES[service]} to a free port."
            )
        command = _serve_command(service)
        process = subprocess.Popen(  # noqa: S603 - our own entry point
            command,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            env=env,
            start_new_session=True,
        )
        assert process.stdout is not None
        pump = threading.Thread(
            target=self._relay, args=(name, process.stdout), name=f"{name}-output", daemon=True
        )
        pump.start()
        self._services.append(_Service(name, port, process, pump, service, replica))
        ProcessRecord(
            name=service_record_name(name),
            pid=process.pid,
            port=port,
            executable=command[0],
            owner=os.getpid(),
        ).save(self._records)
        return name

    def wait_healthy(self, name: str) -> str:
        """Wait until launched service `name` answers `/health`; its base URL.

        A service that exits or stays silent is stopped and reported as InfrastructureError.
        """
        service = next(service for service in self._services if service.name == name)
        try:
            self._wait_healthy(name, service.process)
        except BaseException:
            self._services.remove(service)
            self._stop(service)
            raise
        return self.base_url(name)

    def _relay(self, name: str, output: IO[bytes]) -> None:
        for raw in iter(output.readline, b""):
            self._console.line(f"{name:<6}| {raw.decode(errors='replace').rstrip()}")
        output.close()

    def _wait_healthy(self, name: str, process: subprocess.Popen[bytes]) -> None:
        url = self.base_url(name) + "/health"
        deadline = time.monotonic() + HEALTH_TIMEOUT_SECONDS
        with httpx.Client(timeout=1.0) as client:
            while True:
                code = process.poll()
                if code is not None:
                    raise InfrastructureError(
                        f"The {name} service exited during start-up (exit code {code}); "
                        "its output is above."
                    )
                try:
                    if client.get(url).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass  # not listening yet
                if time.monotonic() > deadline:
                    raise InfrastructureError(
                        f"The {name} service did not answer {url} within "
                        f"{HEALTH_TIMEOUT_SECONDS:.0f}s."
                    )
                time.sleep(0.1)

    def exited(self) -> list[tuple[str, int]]:
        """Services that stopped on their own, with their exit codes."""
        return [
            (service.name, code)
            for service in self._services
            if (code := service.process.poll()) is not None
        ]

    def pid(self, name: str) -> int | None:
        """The process id of launched service `name`, None when it is not running."""
        for service in self._services:
            if service.name == name and service.process.poll() is None:
                return service.process.pid
        return None

    def restart(self, name: str) -> None:
        """Start service `name` again (it stopped on its own), on the same port and settings."""
        old = next(service for service in self._services if service.name == name)
        self._services.remove(old)
        self._stop(old)
        self.launch(old.service or old.name, old.replica)

    def stop_all(self) -> None:
        """Stop every started service, the last started first, and wait for each."""
        while self._services:
            self._stop(self._services.pop())

    def _stop(self, service: _Service) -> None:
        terminate(service.process.pid, child=service.process, timeout=10.0)
        service.pump.join(timeout=5.0)
        ProcessRecord.path(self._records, service_record_name(service.name)).unlink(missing_ok=True)

    def _clear_stale(self, name: str) -> None:
        """Stop the same service left running by a run that crashed, so it frees its port."""
        record = ProcessRecord.load(self._records, service_record_name(name))
        if record is None:
            return
        if record.is_alive():
            refuse_a_running_stack(record, self._records)
            self._console.line(f"Stopping the {name} service left running (pid {record.pid})")
            terminate(record.pid, timeout=10.0)
        record.forget(self._records)


def service_record_name(service: str) -> str:
    """The pid record of a service process (`auth`, `auth-2`, ...) beside the servers' ones."""
    return f"service-{service}"
