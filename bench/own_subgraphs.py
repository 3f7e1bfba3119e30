"""Our own subgraphs through the router, with real PostgreSQL: requests per second of `me` and of
`user(id) { profile { about } followers(first: 20) { edges { node { username } } } }`.

Creates a scratch database and Redis key prefix, runs the auth and user subgraphs and the
router as their own processes (`unityplan serve ...`, as in production), registers users
(each follows the first), then drives each query from `--concurrency` clients with valid
tokens for `--seconds` seconds, and removes what it created. With `--profile`, py-spy samples
the user subgraph during the second query and prints where its time goes.

    .venv/bin/python bench/own_subgraphs.py [--users 12] [--seconds 10] [--concurrency 8]

Servers: TEST_POSTGRES_URL / TEST_REDIS_URL / TEST_NATS_URL, else the local defaults.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import os
import secrets
import shutil
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
from auth_login import (  # bench/ is the script's directory
    ADMIN_URL,
    PASSWORD,
    REDIS_URL,
    TERRITORY,
    _environment,
    _free_port,
    _plain,
    _prepare,
)
from redis.asyncio import Redis

from core.config import load_settings
from core.events import drop_scratch_namespace

NATS_URL = os.environ.get("TEST_NATS_URL", "nats://127.0.0.1:4222")
REGISTER = "mutation R($input: RegisterInput!) { register(input: $input) { user { id } } }"
LOGIN = "mutation L($input: LoginInput!) { login(input: $input) { accessToken } }"
FOLLOW = "mutation F($id: ID!) { follow(userId: $id) { id } }"
ME = "{ me { id username } }"
USER = (
    "query U($id: ID!) { user(id: $id) { profile { about } "
    "followers(first: 20) { edges { node { username } } } } }"
)


async def _post(
    client: httpx.AsyncClient, query: str, variables: dict[str, Any], token: str | None = None
) -> dict[str, Any]:
    headers = {"authorization": f"Bearer {token}"} if token else {}
    response = await client.post(
        "/graphql", json={"query": query, "variables": variables}, headers=headers
    )
    body: dict[str, Any] = response.json()
    if body.get("errors"):
        raise RuntimeError(f"GraphQL error: {body['errors']}")
    return body


async def _wait(url: str, process: asyncio.subprocess.Process, path: str) -> None:
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=url) as client:
        while time.monotonic() < deadline:
            if process.returncode is not None:
                raise RuntimeError(f"{url} exited during start-up")
            try:
                if (await client.get(path)).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.3)
    raise RuntimeError(f"{url} did not become ready within 60 s")


async def _users(router: str, invitation: str, count: int) -> tuple[list[str], list[str]]:
    """Registered user ids and their access tokens; everyone follows the first user."""
    ids: list[str] = []
    tokens: list[str] = []
    async with httpx.AsyncClient(base_url=router, timeout=60) as client:
        for index in range(count):
            name = f"bench_{index}_{secrets.token_hex(3)}"
            registered = await _post(
                client,
                REGISTER,
                {
                    "input": {
                        "territoryCode": TERRITORY,
                        "invitationToken": invitation,
                        "username": name,
                        "password": PASSWORD,
                    }
                },
            )
            ids.append(registered["data"]["register"]["user"]["id"])
            login = await _post(client, LOGIN, {"input": {"username": name, "password": PASSWORD}})
            tokens.append(login["data"]["login"]["accessToken"])
        for token in tokens[1:]:
            await _post(client, FOLLOW, {"id": ids[0]}, token)
    return ids, tokens


async def _load(
    router: str, query: str, variables: dict[str, Any], tokens: list[str], args: argparse.Namespace
) -> tuple[float, float, float, int]:
    """(req/s, p50 ms, p95 ms, requests) of `query` from `args.concurrency` clients."""
    latencies: list[float] = []
    stop_at = time.monotonic() + args.seconds
    limits = httpx.Limits(max_connections=args.concurrency)
    async with httpx.AsyncClient(base_url=router, timeout=30, limits=limits) as client:

        async def worker(index: int) -> None:
            while time.monotonic() < stop_at:
                begin = time.perf_counter()
                await _post(client, query, variables, tokens[index % len(tokens)])
                latencies.append(time.perf_counter() - begin)
                index += args.concurrency

        started = time.monotonic()
        await asyncio.gather(*(worker(i) for i in range(args.concurrency)))
        elapsed = time.monotonic() - started
    latencies.sort()
    pick = latencies[int(len(latencies) * 0.5)] * 1000, latencies[int(len(latencies) * 0.95)] * 1000
    return len(latencies) / elapsed, pick[0], pick[1], len(latencies)


_PARTS = (
    ("SQL (SQLAlchemy, asyncpg)", ("sqlalchemy", "asyncpg")),
    ("GraphQL execution (strawberry, graphql-core)", ("strawberry", "graphql/")),
    ("JSON and HTTP (Litestar, uvicorn, msgspec)", ("litestar", "uvicorn", "msgspec", "json")),
    ("subgraph code", ("subgraphs/", "core/")),
)


def _where_time_goes(raw: Path) -> None:
    counts: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        frames = stack.split(";")
        samples = int(number)
        total += samples
        if frames[-1].startswith("Runner.run") or "select" in frames[-1]:
            counts["idle (waiting for the database or clients)"] += samples
            continue
        # The innermost frame that belongs to a known part names the part.
        for frame in reversed(frames):
            part = next((name for name, marks in _PARTS if any(m in frame for m in marks)), None)
            if part is not None:
                counts[part] += samples
                break
        else:
            counts["event loop and the rest"] += samples
    for name, samples in counts.most_common():
        print(f"  {100 * samples / max(total, 1):5.1f}%  {name}")
    # The subgraph's own functions the time is spent under (inclusive), heaviest first.
    inclusive: collections.Counter[str] = collections.Counter()
    for line in raw.read_text().splitlines():
        stack, _, number = line.rpartition(" ")
        for frame in set(stack.split(";")):
            if "subgraphs/" in frame:
                inclusive[frame] += int(number)
    print("  heaviest subgraph functions (inclusive):")
    for frame, samples in inclusive.most_common(8):
        print(f"  {100 * samples / max(total, 1):5.1f}%  {frame}")


def _py_spy() -> str | None:
    spy = shutil.which("py-spy") or str(Path(sys.executable).with_name("py-spy"))
    return spy if Path(spy).exists() else None


async def _profile(pid: int, seconds: float, raw: Path) -> asyncio.subprocess.Process | None:
    spy = _py_spy()
    if spy is None:
        print("py-spy not installed: no profile")
        return None
    return await asyncio.create_subprocess_exec(
        spy,
        *("record", "-p", str(pid), "-d", str(int(seconds)), "-r", "200"),
        *("-f", "raw", "-o", str(raw), "--nonblocking"),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.DEVNULL,
    )


async def main(args: argparse.Namespace) -> None:
    database = f"unityplan_bench_{secrets.token_hex(4)}"
    prefix = f"bench{secrets.token_hex(4)}:"
    admin = await asyncpg.connect(_plain(ADMIN_URL))
    await admin.execute(f'CREATE DATABASE "{database}"')
    await admin.close()
    ports = {name: _free_port() for name in ("auth", "user", "router")}
    processes: list[asyncio.subprocess.Process] = []
    with tempfile.TemporaryDirectory() as devstack:
        environment = _environment(database, prefix, devstack, ports["auth"])
        environment.update(
            {
                "USER_PORT": str(ports["user"]),
                "ROUTER_PORT": str(ports["router"]),
                "NATS_URL": NATS_URL,
                "EVENTS_NAMESPACE": prefix.rstrip(":"),
                "AUTH_SUBGRAPH_URL": f"http://127.0.0.1:{ports['auth']}/graphql",
                "USER_SUBGRAPH_URL": f"http://127.0.0.1:{ports['user']}/graphql",
                "ROUTER_GRAPHIQL": "false",
            }
        )
        try:
            settings = load_settings(environment)
            [invitation] = await _prepare(settings, args.users)
            unityplan = str(Path(sys.executable).with_name("unityplan"))
            for service in ("auth", "user", "router"):
                process = await asyncio.create_subprocess_exec(
                    unityplan,
                    *("serve", service, "--port", str(ports[service])),
                    env={**os.environ, **environment},
                )
                processes.append(process)
                ready = "/ready" if service == "router" else "/health"
                await _wait(f"http://127.0.0.1:{ports[service]}", process, ready)
            router = f"http://127.0.0.1:{ports['router']}"
            ids, tokens = await _users(router, invitation, args.users)
            rps, p50, p95, count = await _load(router, ME, {}, tokens, args)
            print(f"me: {rps:.1f} req/s, p50 {p50:.1f} ms, p95 {p95:.1f} ms ({count} requests)")
            raw = Path(devstack) / "user-subgraph.txt"
            spy = await _profile(processes[1].pid, args.seconds - 1, raw) if args.profile else None
            rps, p50, p95, count = await _load(router, USER, {"id": ids[0]}, tokens, args)
            print(
                f"user(id) with 20 followers: {rps:.1f} req/s, p50 {p50:.1f} ms, "
                f"p95 {p95:.1f} ms ({count} requests)"
            )
            if spy is not None:
                await spy.wait()
                print("user subgraph during user(id), share of samples:")
                _where_time_goes(raw)
        finally:
            for process in reversed(processes):
                if process.returncode is None:
                    process.terminate()
                    await asyncio.wait_for(process.wait(), 15)
            admin = await asyncpg.connect(_plain(ADMIN_URL))
            await admin.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
            await admin.close()
            await drop_scratch_namespace(NATS_URL, prefix.rstrip(":"))
            redis = Redis.from_url(REDIS_URL)
            keys = [key async for key in redis.scan_iter(match=f"{prefix}*", count=500)]
            if keys:
                await redis.delete(*keys)
            await redis.aclose()
    print(f"{os.cpu_count()} CPUs, concurrency {args.concurrency}, {args.seconds:.0f} s per query")


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=12)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--concurrency", type=int, default=8)
    parser.add_argument("--profile", action="store_true", help="py-spy the user subgraph")
    asyncio.run(main(parser.parse_args()))
