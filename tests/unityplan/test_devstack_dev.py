"""`unityplan dev` end to end, as a user runs it: embedded servers, demo territory, clean stop."""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from unityplan.devstack import free_port, port_in_use
from unityplan.devstack.dev import READY_MESSAGE

pytestmark = pytest.mark.embedded

UNITYPLAN = Path(sys.executable).parent / "unityplan"
SERVER_PORTS = ("DEV_POSTGRES_PORT", "DEV_NATS_PORT", "DEV_REDIS_PORT")
SERVICE_PORTS = ("AUTH_PORT", "USER_PORT", "ROUTER_PORT")
SERVICE_LINE = re.compile(r"^\s+(?P<name>auth|user|router)\s+(?P<url>http://\S+)/graphql$")


class DevRun:
    """One `unityplan dev` child; its output is collected line by line as it comes."""

    def __init__(self, cwd: Path, env: dict[str, str], *args: str) -> None:
        self.lines: list[str] = []
        self._ready = threading.Event()
        self.process = subprocess.Popen(  # noqa: S603 - our own entry point
            [str(UNITYPLAN), "dev", *args],
            cwd=cwd,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.process.stdout is not None
        for line in self.process.stdout:
            self.lines.append(line.rstrip())
            if READY_MESSAGE in line:
                self._ready.set()
        self._ready.set()  # output ended: stop waiting, the assertion says why

    def service_urls(self) -> dict[str, str]:
        """The services it reported as started, with their base URLs."""
        found = (SERVICE_LINE.match(line) for line in self.lines)
        return {match["name"]: match["url"] for match in found if match}

    @property
    def output(self) -> str:
        return "\n".join(self.lines)

    def wait_ready(self, timeout: float = 60) -> None:
        self._ready.wait(timeout)
        assert any(READY_MESSAGE in line for line in self.lines), self.output

    def stop(self, sig: signal.Signals) -> int:
        self.process.send_signal(sig)
        code = self.process.wait(30)
        self._reader.join(5)
        self._close()
        return code

    def _close(self) -> None:
        if self.process.stdout is not None and not self._reader.is_alive():
            self.process.stdout.close()

    def kill(self) -> None:
        """Stop it after a failed test: SIGTERM first, so it stops the servers and services it
        started (a SIGKILL alone would leave them running), SIGKILL if it does not end."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(30)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(10)
        self._reader.join(5)
        self._close()


@pytest.fixture
def stack_root() -> Iterator[Path]:
    """A private directory for the stack's data, removed afterwards.

    Not pytest's tmp_path: as root, PostgreSQL runs as `nobody`, which must traverse every
    parent directory, and each new pytest session resets /tmp/pytest-of-<user> to mode 0700.
    """
    root = Path(tempfile.mkdtemp(prefix="unityplan-devstack-test-"))
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture
def dev_env(stack_root: Path) -> dict[str, str]:
    """A private stack: data in tmp, free ports, and no configured server to fall back on."""
    env = dict(os.environ)
    env.update({name: str(free_port()) for name in SERVER_PORTS + SERVICE_PORTS})
    env.update(
        DEVSTACK_DIR=str(stack_root / ".devstack"),
        DATABASE_URL="",
        POD_DATABASE_URLS="",
        NATS_URL="",
        REDIS_URL="",
        EVENTS_NAMESPACE="",
        REDIS_KEY_PREFIX="",
    )
    return env


@pytest.fixture
def runs() -> Iterator[list[DevRun]]:
    started: list[DevRun] = []
    yield started
    for run in started:
        run.kill()  # only when a test failed half-way; the ports check would then fail too


def _nothing_left(root: Path, env: dict[str, str]) -> None:
    ports = [int(env[name]) for name in SERVER_PORTS + SERVICE_PORTS]
    assert not [port for port in ports if port_in_use(port)]
    survivors = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            if str(root).encode() in cmdline.read_bytes():
                survivors.append(cmdline.parent.name)
        except OSError:
            continue  # exited while we looked
    assert survivors == []
    assert list((root / "run").glob("*.json")) == []


def _free_ports_in_a_row(count: int) -> int:
    """The first of `count` consecutive ports that nothing listens on right now."""
    for _ in range(50):
        first = free_port()
        if first + count <= 65536 and not any(port_in_use(first + i) for i in range(count)):
            return first
    raise AssertionError(f"no {count} free ports in a row")


def _replica_env(env: dict[str, str]) -> tuple[dict[str, str], list[int]]:
    """`env` with service ports that leave room for a second replica set; all six ports."""
    subgraphs, router = _free_ports_in_a_row(4), _free_ports_in_a_row(2)
    ports = {"AUTH_PORT": subgraphs, "USER_PORT": subgraphs + 1, "ROUTER_PORT": router}
    every = [subgraphs + i for i in range(4)] + [router, router + 1]
    return {**env, **{name: str(port) for name, port in ports.items()}}, every


def _unityplan_run(cwd: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    """`unityplan ARGS` run in `cwd` with `env`, its output captured."""
    return subprocess.run(  # noqa: S603 - our own entry point
        [str(UNITYPLAN), *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def _unityplan(cwd: Path, env: dict[str, str], *args: str) -> str:
    """What `unityplan ARGS` printed, run in `cwd` with `env` (beside a running `unityplan dev`,
    a second terminal); it must succeed."""
    result = _unityplan_run(cwd, env, *args)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


README = Path(__file__).parents[2] / "README.md"
UNFOLLOW_BY_HAND = """curl -s $URL -H 'content-type: application/json' \\
  -H "authorization: Bearer $BOB" -d '{
  "query": "mutation ($id: ID!) { unfollow(userId: $id) }", "variables": {"id": "'$ALICE_ID'"}}'"""


def _readme_first_steps(cwd: Path, env: dict[str, str], router: str, invitation: str) -> str:
    """The curl and websocat commands of the README's first section, run as written (on this
    stack's router, with its invitation); everything they printed."""
    first_section = README.read_text().split("\n## ", 1)[0]
    blocks = re.findall(r"```sh\n(.*?)```", first_section, re.DOTALL)
    by_hand, subscribe, follow = blocks[-3:]
    port = router.rsplit(":", 1)[1]
    by_hand = by_hand.replace("INVITATION=inv_...", f"INVITATION={invitation}")
    script = "\n".join(
        [
            'exec >"$OUT" 2>&1',
            by_hand,
            subscribe,
            # The subscription reaches the user subgraph a moment after the socket opens: follow
            # until the event arrives (unfollowing in between), as a person would by waiting.
            "for attempt in $(seq 20); do",
            follow,
            "  for wait in $(seq 8); do",
            """    grep -q '"type":"next"' "$OUT" && break 2; sleep 0.25""",
            "  done",
            UNFOLLOW_BY_HAND,
            "done",
            "kill %1",
        ]
    )
    script = script.replace(":4000/", f":{port}/").replace(".venv/bin/", f"{UNITYPLAN.parent}/")
    out = cwd / "readme-steps.out"
    subprocess.run(  # noqa: S603 - bash runs the README's own commands
        ["bash", "-c", script],  # noqa: S607 - bash is wherever PATH says
        cwd=cwd,
        env={**env, "OUT": str(out)},
        timeout=120,
        check=False,
    )
    return out.read_text()


async def _database(env: dict[str, str]) -> asyncpg.Connection:
    return await asyncpg.connect(
        f"postgresql://postgres@127.0.0.1:{env['DEV_POSTGRES_PORT']}/unityplan"
    )


async def test_dev_brings_up_the_demo_territory_stops_cleanly_and_keeps_data(
    tmp_path: Path, stack_root: Path, dev_env: dict[str, str], runs: list[DevRun]
) -> None:
    root = stack_root / ".devstack"
    first = DevRun(tmp_path, dev_env)
    runs.append(first)
    first.wait_ready()
    assert f"127.0.0.1:{dev_env['DEV_POSTGRES_PORT']}/unityplan" in first.output
    services = first.service_urls()
    async with httpx.AsyncClient(timeout=5) as client:
        for name, url in services.items():
            assert (await client.get(f"{url}/health")).status_code == 200, name

    # A second `unityplan dev` on the same data leaves the first one's servers alone.
    again = _unityplan_run(tmp_path, dev_env, "dev")
    assert again.returncode == 1
    assert f"A development stack already runs from {root} (pid {first.process.pid})" in (
        again.stdout
    ), again.stdout + again.stderr
    down = _unityplan_run(tmp_path, dev_env, "infra", "down")
    assert down.returncode == 1
    assert "A development stack already runs" in down.stderr
    up = _unityplan_run(tmp_path, dev_env, "infra", "up")  # neither restarts nor adopts them
    assert up.returncode == 1
    assert "A development stack already runs" in up.stderr
    # A second terminal: the commands find the running stack without being configured.
    listed = _unityplan(tmp_path, dev_env, "territory", "list")
    assert "territory_dk" in listed
    bootstrap = _unityplan(tmp_path, dev_env, "admin", "bootstrap")
    assert "Platform admin 'admin' already existed in dk." in bootstrap
    # The demo finds the router's port too: the service ports are not in its environment.
    demo_env = {name: value for name, value in dev_env.items() if name not in SERVICE_PORTS}
    shown = _unityplan(tmp_path, demo_env, "demo")
    assert f"-> POST {services['router']}/graphql" in shown
    assert '"followerCount": 0' in shown, "the query spanning both subgraphs was answered"
    assert '<- {"id": "1", "type": "next"' in shown, "the subscription fired"
    invitation = re.search(r"invitation token: (inv_\w+)", first.output)
    assert invitation is not None, first.output
    if shutil.which("curl") is None:
        warnings.warn("curl is not installed: the README's curl steps were not run", stacklevel=1)
    else:
        steps = _readme_first_steps(tmp_path, dev_env, services["router"], invitation[1])
        assert '"me":{"username":"alice","territory":{"name":"Denmark"}' in steps, steps
        assert '{"type":"connection_ack"}' in steps, steps
        assert '"newFollower":{"followedAt"' in steps, steps

    # A service that dies is started again by the supervisor, on the same port.
    from unityplan.devstack.processes import ProcessRecord

    record = ProcessRecord.load(root, "service-auth")
    assert record is not None
    os.kill(record.pid, signal.SIGKILL)
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(timeout=2) as client:
        while True:
            assert time.monotonic() < deadline, first.output
            if "auth started again." in first.output:
                with contextlib.suppress(httpx.HTTPError):
                    if (await client.get(f"{services['auth']}/health")).status_code == 200:
                        break
            await asyncio.sleep(0.2)
    assert "auth exited (code -9); starting it again in 1 s." in first.output

    conn = await _database(dev_env)
    try:
        schema = "SELECT 1 FROM information_schema.schemata WHERE schema_name = 'territory_dk'"
        assert await conn.fetchval(schema) == 1
        await conn.execute("CREATE TABLE devstack_marker (note text)")
        await conn.execute("INSERT INTO devstack_marker VALUES ('from the first run')")
    finally:
        await conn.close()

    assert first.stop(signal.SIGINT) == 0, first.output
    assert "Stopped." in first.output
    _nothing_left(root, dev_env)

    # The second run with two replica sets: auth, user and router each twice, on the next ports.
    replica_env, replica_ports = _replica_env(dev_env)
    second = DevRun(tmp_path, replica_env, "--replicas", "2")
    runs.append(second)
    second.wait_ready()
    assert "(without" not in second.output, second.output
    async with httpx.AsyncClient(timeout=5) as client:
        for port in replica_ports:
            health = await client.get(f"http://127.0.0.1:{port}/health")
            assert health.status_code == 200, port
    conn = await _database(dev_env)
    try:
        assert await conn.fetchval("SELECT note FROM devstack_marker") == "from the first run"
        assert await conn.fetchval(schema) == 1
    finally:
        await conn.close()
    assert second.stop(signal.SIGTERM) == 0, second.output
    _nothing_left(root, replica_env)
    assert not [port for port in replica_ports if port_in_use(port)]


def test_dev_with_a_taken_port_says_which_variable_to_change(
    tmp_path: Path, stack_root: Path, dev_env: dict[str, str]
) -> None:
    port = int(dev_env["DEV_NATS_PORT"])
    with socket.socket() as squatter:
        squatter.bind(("127.0.0.1", port))
        squatter.listen()
        result = _unityplan_run(tmp_path, dev_env, "dev")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output
    assert f"port {port}" in output
    assert "DEV_NATS_PORT" in output
    assert "Traceback" not in output
    _nothing_left(stack_root / ".devstack", dev_env)


def test_infra_up_leaves_the_servers_running_until_infra_down(
    tmp_path: Path, stack_root: Path, dev_env: dict[str, str]
) -> None:
    def infra(action: str) -> str:
        return _unityplan(tmp_path, dev_env, "infra", action)

    ports = [int(dev_env[name]) for name in SERVER_PORTS]
    try:
        up = infra("up")
        assert f"127.0.0.1:{dev_env['DEV_POSTGRES_PORT']}/unityplan" in up
        assert all(port_in_use(port) for port in ports), "they outlive `infra up` itself"
        status = infra("status")
        assert status.count("running") == 3
    finally:
        down = infra("down")
    assert "postgres" in down
    _nothing_left(stack_root / ".devstack", dev_env)
