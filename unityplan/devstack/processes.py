"""Server processes of the embedded stack: own process group, a pid record on disk, always stopped.

A record (`<root>/run/<name>.json`) outlives a crashed parent, so the next run can find the
orphaned server and stop or reuse it instead of tripping over its port.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import IO

from core.errors import InfrastructureError

LOCALHOST = "127.0.0.1"


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((LOCALHOST, 0))
        port: int = sock.getsockname()[1]
        return port


def port_in_use(port: int) -> bool:
    """Whether something already listens on 127.0.0.1:`port` (or on every interface)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        # SO_REUSEADDR, as every server sets it: connections in TIME_WAIT do not count as taken.
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            sock.bind((LOCALHOST, port))
        except OSError:
            return True
        return False


def wait_until(condition: Callable[[], bool], *, timeout: float, interval: float = 0.05) -> bool:
    """Poll `condition` until it holds or `timeout` seconds pass; whether it held."""
    deadline = time.monotonic() + timeout
    while True:
        if condition():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(interval)


@dataclass(frozen=True)
class ProcessRecord:
    """What the pid file of one server says: enough to recognise and stop it later, and whose
    it is."""

    name: str
    pid: int
    port: int
    executable: str
    # Started by `unityplan infra up` to outlive its parent: later runs reuse it.
    detached: bool = False
    # The process that started it and will stop it (`unityplan dev`); 0: not known.
    owner: int = 0

    @staticmethod
    def path(root: Path, name: str) -> Path:
        return root / "run" / f"{name}.json"

    def save(self, root: Path) -> None:
        path = self.path(root, self.name)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(asdict(self)))

    @classmethod
    def load(cls, root: Path, name: str) -> ProcessRecord | None:
        try:
            raw = json.loads(cls.path(root, name).read_text())
            return cls(**raw)
        except (OSError, ValueError, TypeError):
            return None

    def forget(self, root: Path) -> None:
        self.path(root, self.name).unlink(missing_ok=True)

    def owner_running(self) -> bool:
        """Whether the run that started this process still runs (so it is not an orphan)."""
        if not self.owner or self.owner == os.getpid():
            return False
        return _command_line(self.owner) is not None

    def is_alive(self) -> bool:
        """Whether the recorded process still runs and is the server we started.

        Checking the command line guards against the pid having been reused by another program.
        """
        command = _command_line(self.pid)
        return command is not None and Path(self.executable).name in command


def _command_line(pid: int) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, owned by another user (PostgreSQL runs unprivileged under root)
    proc = Path(f"/proc/{pid}/cmdline")
    if proc.exists():
        try:
            text = proc.read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            return None
        return text or None  # a zombie has an empty command line: it is gone
    result = subprocess.run(  # noqa: S603 - numeric argument
        ["ps", "-o", "command=", "-p", str(pid)],  # noqa: S607 - `ps` is wherever PATH says
        capture_output=True,
        text=True,
        check=False,
    )
    return result.stdout.strip() or None


@dataclass(frozen=True)
class Account:
    """An unprivileged system account to run a server as when we are root."""

    name: str
    uid: int
    gid: int


def spawn(
    command: Sequence[str],
    *,
    log: IO[bytes],
    cwd: Path,
    account: Account | None = None,
    env: dict[str, str] | None = None,
) -> subprocess.Popen[bytes]:
    """Start `command` in a new session, so a Ctrl-C meant for us never reaches it directly."""
    user, group, extra_groups = identity(account)
    return subprocess.Popen(  # noqa: S603 - commands are built from our own binaries
        list(command),
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=subprocess.STDOUT,
        cwd=cwd,
        env=env,
        start_new_session=True,
        user=user,
        group=group,
        extra_groups=extra_groups,
    )


def identity(account: Account | None) -> tuple[int | None, int | None, list[int] | None]:
    """subprocess `user`, `group` and `extra_groups` that run a child as `account`."""
    if account is None:
        return None, None, None
    return account.uid, account.gid, []


def terminate(
    pid: int,
    *,
    stop_signal: signal.Signals = signal.SIGTERM,
    timeout: float = 15.0,
    child: subprocess.Popen[bytes] | None = None,
) -> None:
    """Ask the server to stop, wait up to `timeout`, then kill its whole process group.

    `pid` leads its own process group (see `spawn`), so killing the group also takes any worker
    processes it forked (PostgreSQL backends) that a hard kill of the leader would orphan.
    """
    try:
        os.kill(pid, stop_signal)
    except ProcessLookupError:
        _kill_group(pid)
        return
    if not _wait_exit(pid, child, timeout):
        _kill_group(pid)
        _wait_exit(pid, child, 5.0)
    _kill_group(pid)


def _wait_exit(pid: int, child: subprocess.Popen[bytes] | None, timeout: float) -> bool:
    if child is not None:
        try:
            child.wait(timeout)
        except subprocess.TimeoutExpired:
            return False
        return True
    return wait_until(lambda: _command_line(pid) is None, timeout=timeout)


def _kill_group(pid: int) -> None:
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signal.SIGKILL)


def log_tail(path: Path, lines: int = 15) -> str:
    """The last lines of a server log, to explain a failed start."""
    try:
        text = path.read_text(errors="replace")
    except OSError:
        return ""
    return "\n".join(text.splitlines()[-lines:])


def venv_executable(name: str) -> Path | None:
    """An executable installed into this Python environment's scripts directory."""
    candidate = Path(sys.executable).parent / name
    return candidate if candidate.exists() else None


def refuse_a_running_stack(record: ProcessRecord, root: Path) -> None:
    """InfrastructureError when `record`'s process belongs to a run that is still going: a
    second `unityplan dev` on the same DEVSTACK_DIR must not stop the first one's servers."""
    if record.owner_running():
        raise InfrastructureError(
            f"A development stack already runs from {root} (pid {record.owner}): use it, every "
            "`unityplan` command finds it, or stop it (Ctrl-C in its terminal) first"
        )
