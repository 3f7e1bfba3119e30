"""Subscriptions through the router: many concurrent subscribers on one router process, events
delivered per second, and latency from the mutation's answer to the client receiving the event.

Creates a scratch database, Redis key prefix and NATS namespace, runs the auth and user
subgraphs and the router as their own processes (`unityplan serve ...`, as in production),
registers an owner with a public profile and `--signed-in` viewers, opens `--subscribers`
graphql-transport-ws connections to the router, each subscribed to
`userUpdated(userId: owner) { id username profile { about } }` (the user subgraph provides
`username` with every event), then sends `--events` profile updates, one every
`--interval` seconds, and removes what it created. Subscribers beyond the signed-in ones are
anonymous and share one upstream; each signed-in viewer has an upstream of its own.

    .venv/bin/python bench/subscriptions.py [--subscribers 1000] [--signed-in 50] [--events 40]

`--territories N` creates N idle territories beside the bench's first (the latency with many
territories on the pod). With `--events 0` it only opens the subscriptions and prints how much
the router's resident memory grew with them (10,000 idle WebSockets:
`--subscribers 10000 --signed-in 0 --events 0`).

Latency runs from the moment the `updateProfile` answer arrives (the change is committed by
then) to the moment a client reads the event. Then the same deliveries per hop, from the
timestamps each event carries (`extensions.eventTiming`, see core/events/timing.py): written ->
published by the outbox relay -> received by the subgraph -> answered by it -> read by the
router -> answered by the router -> read by the client.
Servers: TEST_POSTGRES_URL / TEST_NATS_URL / TEST_REDIS_URL, else the local defaults.
Not a test: figures depend on the machine; see the router README for recorded ones.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import gc
import os
import secrets
import socket
import statistics
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import orjson
from redis.asyncio import Redis
from sqlalchemy.engine import make_url
from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed

from core.cache import create_redis
from core.config import Settings, load_settings
from core.db import Database
from core.db.migrations import migrate_global
from core.db.provisioning import create_territory
from core.events import drop_scratch_namespace
from core.events.timing import (
    PUBLISHED,
    ROUTER_RECEIVED,
    ROUTER_SENT,
    SUBGRAPH_RECEIVED,
    SUBGRAPH_SENT,
    WRITTEN,
)
from subgraphs.auth.bootstrap import issue_invitation
from subgraphs.auth.runtime import AuthRuntime

ADMIN_URL = os.environ.get("TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")
NATS_URL = os.environ.get("TEST_NATS_URL", "nats://127.0.0.1:4222")
TERRITORY = "benchsub"
PASSWORD = "bench passphrase 2026"  # noqa: S105 - benchmark data
REGISTER = """
mutation R($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }
"""
UPDATE = "mutation U($about: String!) { updateProfile(input: {about: $about}) { about } }"
WATCH = "subscription W($id: ID!) { userUpdated(userId: $id) { id username profile { about } } }"
CLIENT_READ = "clientRead"
# The hops of `extensions.eventTiming` (core.events.timing) and the client's own read.
HOP_LABELS = {
    (WRITTEN, PUBLISHED): "written (commit) -> outbox relay published",
    (PUBLISHED, SUBGRAPH_RECEIVED): "published -> subgraph received",
    (SUBGRAPH_RECEIVED, SUBGRAPH_SENT): "subgraph resolves (privacy, fields)",
    (SUBGRAPH_SENT, ROUTER_RECEIVED): "subgraph -> router received",
    (ROUTER_RECEIVED, ROUTER_SENT): "router completes and encodes",
    (ROUTER_SENT, CLIENT_READ): "router -> client read",
    (WRITTEN, CLIENT_READ): "total, written -> client read",
}


CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float:
    """User and system CPU time a process has used so far."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def _cpu_of(pids: list[int]) -> float:
    total = 0.0
    for pid in pids:
        try:
            total += _cpu_seconds(pid)
        except (FileNotFoundError, ProcessLookupError):
            continue  # a backend that ended meanwhile
    return total


async def _backends(admin: asyncpg.Connection, database: str) -> list[int]:
    rows = await admin.fetch("SELECT pid FROM pg_stat_activity WHERE datname = $1", database)
    return [int(row["pid"]) for row in rows]


async def _drop_redis_keys(prefix: str) -> None:
    """Remove every Redis key the run's services wrote (all under the run's key prefix)."""
    redis = Redis.from_url(REDIS_URL)
    try:
        async for key in redis.scan_iter(match=f"{prefix}*", count=500):
            await redis.delete(key)
    finally:
        await redis.aclose()


async def _stop_and_remove(
    processes: list[asyncio.subprocess.Process], database: str, run: str, within: float = 30
) -> None:
    """Stop the services (last started first), then remove the run's scratch database, NATS
    namespace and Redis keys."""
    for process in reversed(processes):
        if process.returncode is None:
            process.terminate()
            await asyncio.wait_for(process.wait(), within)
    admin = await asyncpg.connect(_plain(ADMIN_URL))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
    finally:
        await admin.close()
    await drop_scratch_namespace(NATS_URL, run)
    await _drop_redis_keys(f"{run}:")


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _environment(database: str, run: str, devstack: str, ports: dict[str, int]) -> dict[str, str]:
    url = make_url(ADMIN_URL).set(database=database).render_as_string(hide_password=False)
    return {
        "APP_ENV": "test",
        "DATABASE_URL": url,
        "REDIS_URL": REDIS_URL,
        "REDIS_KEY_PREFIX": f"{run}:",
        "NATS_URL": NATS_URL,
        "EVENTS_NAMESPACE": run,
        "DEVSTACK_DIR": devstack,
        "AUTH_PORT": str(ports["auth"]),
        "USER_PORT": str(ports["user"]),
        "ROUTER_PORT": str(ports["router"]),
        "AUTH_SUBGRAPH_URL": f"http://127.0.0.1:{ports['auth']}/graphql",
        "USER_SUBGRAPH_URL": f"http://127.0.0.1:{ports['user']}/graphql",
        "LOG_LEVEL": "WARNING",
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_TIME_COST": "1",
        # Every bench client shares one address: keep the per-address limits out of the way.
        "ROUTER_MAX_SUBSCRIPTION_CONNECTIONS_PER_CLIENT": "1000000",
        "ROUTER_MAX_SUBSCRIPTION_CONNECTIONS": "1000000",
        "LOGIN_FAILURES_PER_IP": "1000000",
        "TRUSTED_PROXIES": "127.0.0.0/8",
    }


async def _invitation(settings: Settings, territories: int = 0) -> str:
    """The bench territory's invitation, after `territories` more territories were created
    beside it (idle ones: the services watch their outboxes and streams all the same)."""
    await migrate_global(settings)
    db = Database(settings.database)
    redis = create_redis(settings.redis)
    try:
        for n in range(territories):
            await create_territory(
                settings, db, code=f"bi{n:05d}", name=f"Idle {n}", type="country"
            )
            if (n + 1) % 100 == 0:
                print(f"  {n + 1} idle territories created")
        await create_territory(settings, db, code=TERRITORY, name="Bench", type="country")
        runtime = AuthRuntime.create(settings, db, redis)
        invitation = await issue_invitation(runtime, TERRITORY, creator_id=None, max_uses=1000)
    finally:
        await redis.aclose()
        await db.dispose()
    return invitation.token


async def _wait_healthy(url: str, process: asyncio.subprocess.Process, what: str) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"{what} exited during start-up")
            try:
                if (await client.get(f"{url}/ready")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.2)
    raise RuntimeError(f"{what} did not become ready within 60 s")


async def _graphql(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None = None
) -> dict[str, Any]:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    # Each request from its own address: the auth subgraph limits registrations per address.
    headers["X-Forwarded-For"] = f"10.{secrets.randbelow(250)}.{secrets.randbelow(250)}.1"
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    body: dict[str, Any] = response.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL error: {body['errors']}")
    return body["data"]


async def _register(client: httpx.AsyncClient, invitation: str) -> tuple[str, str]:
    data = await _graphql(
        client,
        REGISTER,
        {
            "input": {
                "territoryCode": TERRITORY,
                "invitationToken": invitation,
                "username": f"bench_{secrets.token_hex(6)}",
                "password": PASSWORD,
            }
        },
    )
    return data["register"]["user"]["id"], data["register"]["accessToken"]


async def _subscriber(
    url: str,
    token: str | None,
    owner: str,
    ready: asyncio.Event,
    opened: list[int],
    total: int,
    arrivals: dict[str, list[float]],
    timings: dict[str, list[dict[str, float]]],
) -> ClientConnection:
    socket_ = await connect(url, subprotocols=["graphql-transport-ws"], max_queue=None)  # type: ignore[list-item]
    payload = {"Authorization": f"Bearer {token}"} if token else {}
    await socket_.send(orjson.dumps({"type": "connection_init", "payload": payload}).decode())
    assert orjson.loads(await socket_.recv())["type"] == "connection_ack"
    subscribe = {
        "id": "1",
        "type": "subscribe",
        "payload": {"query": WATCH, "variables": {"id": owner}},
    }
    await socket_.send(orjson.dumps(subscribe).decode())
    opened[0] += 1
    if opened[0] == total:
        ready.set()

    async def read() -> None:
        with contextlib.suppress(ConnectionClosed):
            await _read()

    async def _read() -> None:
        async for raw in socket_:
            message = orjson.loads(raw)
            if message["type"] == "ping":
                await socket_.send('{"type":"pong"}')
            elif message["type"] == "next":
                read_at = time.time()
                payload = message["payload"]
                about = payload["data"]["userUpdated"]["profile"]["about"]
                arrivals.setdefault(about, []).append(read_at)
                timing = payload.get("extensions", {}).get("eventTiming")
                if timing is not None:
                    timings.setdefault(about, []).append({**timing, CLIENT_READ: read_at * 1000})

    asyncio.get_running_loop().create_task(read())
    return socket_


def _rss_bytes(pid: int) -> int:
    """The resident memory of a process."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise RuntimeError(f"no VmRSS for process {pid}")


def _cpu_by_service(services: dict[str, int]) -> dict[str, float]:
    return {name: _cpu_of([pid]) for name, pid in services.items()}


async def _measure(
    router: str, invitation: str, args: argparse.Namespace, services: dict[str, int], database: str
) -> None:
    async with httpx.AsyncClient(base_url=router, timeout=60) as client:
        owner, owner_token = await _register(client, invitation)
        viewers = [(await _register(client, invitation))[1] for _ in range(args.signed_in)]
        tokens: list[str | None] = [*viewers, *[None] * (args.subscribers - len(viewers))]
        ready, opened = asyncio.Event(), [0]
        arrivals: dict[str, list[float]] = {}
        timings: dict[str, list[dict[str, float]]] = {}
        ws_url = router.replace("http://", "ws://") + "/graphql"
        router_before = _rss_bytes(services["router"])
        sockets: list[ClientConnection] = []
        for start in range(0, len(tokens), 100):
            sockets += await asyncio.gather(
                *(
                    _subscriber(ws_url, token, owner, ready, opened, len(tokens), arrivals, timings)
                    for token in tokens[start : start + 100]
                )
            )
        await ready.wait()
        # Until every upstream resolver listens on NATS: warm-up events until all clients hear one.
        warm = 0
        while True:
            warm += 1
            about = f"warm-up {warm}"
            await _graphql(client, UPDATE, {"about": about}, owner_token)
            settle = time.monotonic() + 10
            while len(arrivals.get(about, ())) < len(tokens) and time.monotonic() < settle:  # noqa: ASYNC110
                await asyncio.sleep(0.2)
            heard = len(arrivals.get(about, ()))
            if heard == len(tokens):
                break
            print(f"warm-up {warm}: {heard}/{len(tokens)} subscribers heard it")
            if warm >= 10:
                raise RuntimeError("not every subscriber received the warm-up events")
        print(f"{len(tokens)} subscribers ({args.signed_in} signed in, the rest anonymous) ready")
        # This client's own garbage collections would pause its reading (and so the figures)
        # for as long as it walks a thousand connections' objects: keep them out of it.
        gc.collect()
        gc.freeze()
        grown = _rss_bytes(services["router"]) - router_before
        print(
            f"router memory: +{grown / 2**20:.1f} MiB with the subscriptions open and one event "
            f"delivered = {grown / len(tokens) / 1024:.1f} KiB per subscription"
        )
        if not args.events:
            for socket_ in sockets:
                await socket_.close()
            return
        admin = await asyncpg.connect(_plain(ADMIN_URL))
        backends = await _backends(admin, database)
        cpu_before = {**_cpu_by_service(services), "PostgreSQL": _cpu_of(backends)}
        cpu_before["this client"] = time.process_time()
        committed: dict[str, float] = {}
        first = time.time()
        for n in range(args.events):
            about = f"event {n}"
            await _graphql(client, UPDATE, {"about": about}, owner_token)
            committed[about] = time.time()
            await asyncio.sleep(args.interval)
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and any(  # noqa: ASYNC110 - polled with a deadline
            len(arrivals.get(about, ())) < len(tokens) for about in committed
        ):
            await asyncio.sleep(0.1)
        cpu_after = {**_cpu_by_service(services), "PostgreSQL": _cpu_of(backends)}
        cpu_after["this client"] = time.process_time()
        await admin.close()
        delivered = [t for about in committed for t in arrivals.get(about, ())]
        latencies = sorted(
            (t - committed[about]) * 1000 for about in committed for t in arrivals.get(about, ())
        )
        elapsed = max(delivered) - first
        expected = len(tokens) * len(committed)
        p99 = latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))]
        print(
            f"delivered {len(delivered)}/{expected} events in {elapsed:.1f} s = "
            f"{len(delivered) / elapsed:.0f} events/s; latency p50 "
            f"{statistics.median(latencies):.1f} ms, p99 {p99:.1f} ms, max {latencies[-1]:.1f} ms"
        )
        _print_breakdown([timing for about in committed for timing in timings.get(about, ())])
        # Independent of the machine's other load, unlike the latencies: the work each event
        # costs (the PostgreSQL figure counts the backends open when the events began).
        spent = ", ".join(
            f"{name} {1000 * (cpu_after[name] - cpu_before[name]) / len(committed):.1f}"
            for name in cpu_before
        )
        print(f"CPU per event (ms, every subscriber's delivery included): {spent}")
        for socket_ in sockets:
            await socket_.close()


def _print_breakdown(timings: list[dict[str, float]]) -> None:
    """p50 and p99 of each hop, from the timestamps the event carried (same clock throughout)."""
    if not timings:
        print("no per-hop timestamps arrived with the events")
        return
    print(f"per hop, over {len(timings)} deliveries (ms):")
    for (start, end), label in HOP_LABELS.items():
        spans = sorted(t[end] - t[start] for t in timings if start in t and end in t)
        if spans:
            p99 = spans[min(len(spans) - 1, int(len(spans) * 0.99))]
            print(f"  {label:<44} p50 {statistics.median(spans):7.1f}   p99 {p99:7.1f}")


async def main(args: argparse.Namespace) -> None:
    database = f"unityplan_bench_{secrets.token_hex(4)}"
    run = f"benchsub{secrets.token_hex(4)}"
    admin = await asyncpg.connect(_plain(ADMIN_URL))
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    ports = {name: _free_port() for name in ("auth", "user", "router")}
    processes: list[asyncio.subprocess.Process] = []
    unityplan = str(Path(sys.executable).with_name("unityplan"))
    with tempfile.TemporaryDirectory() as devstack:
        environment = _environment(database, run, devstack, ports)
        try:
            invitation = await _invitation(load_settings(environment), args.territories)
            for service in ("auth", "user", "router"):
                process = await asyncio.create_subprocess_exec(
                    unityplan,
                    "serve",
                    service,
                    "--port",
                    str(ports[service]),
                    env={**os.environ, **environment},
                )
                processes.append(process)
                await _wait_healthy(f"http://127.0.0.1:{ports[service]}", process, service)
            services = {
                service: process.pid
                for service, process in zip(("auth", "user", "router"), processes, strict=True)
            }
            await _measure(
                f"http://127.0.0.1:{ports['router']}", invitation, args, services, database
            )
        finally:
            await _stop_and_remove(processes, database, run)


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--subscribers", type=int, default=1000)
    parser.add_argument("--signed-in", type=int, default=50)
    parser.add_argument("--events", type=int, default=40)
    parser.add_argument("--interval", type=float, default=0.25)
    parser.add_argument(
        "--territories", type=int, default=0, help="idle territories created beside the bench's"
    )
    asyncio.run(main(parser.parse_args()))
