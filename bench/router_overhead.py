"""Router overhead: latency of a one-subgraph query with a cached plan through the router,
minus the same query sent straight to the subgraph; and what the router's proof costs per
subgraph request (signing in the router, checking in the subgraph), measured in process.

    .venv/bin/python bench/router_overhead.py [--seconds 10] [--concurrency 1] [--port 4000]
    .venv/bin/python bench/router_overhead.py --proof-only

The router runs pinned to CPU 0; the workload's static subgraphs and the load generator share
the other CPUs. One connection by default, so the figures are latency rather than queueing.
"""

from __future__ import annotations

import argparse
import hashlib
import importlib.util
import json
import os
import sys
import tempfile
import time
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx

ROOT = Path(__file__).resolve().parent.parent
QUERY = "query TestQuery { users { id username name } }"
ACCOUNTS = "http://127.0.0.1:4201/graphql"
# A representative subgraph request: an `_entities` fetch of 20 users.
ENTITIES_BODY = json.dumps(
    {
        "query": "query($representations:[_Any!]!){_entities(representations:$representations)"
        "{...on User{id username name}}}",
        "variables": {
            "representations": [
                {"__typename": "User", "id": f"{i:08d}-0000-4000-8000-000000000000"}
                for i in range(20)
            ]
        },
    }
).encode()


def _bench_router() -> ModuleType:
    """bench/router.py's process and load helpers (a script, not a package)."""
    spec = importlib.util.spec_from_file_location("bench_router", ROOT / "bench" / "router.py")
    assert spec is not None
    assert spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses look their module up while it loads
    spec.loader.exec_module(module)
    return module


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--warmup", type=float, default=3)
    parser.add_argument("--concurrency", type=int, default=1)
    parser.add_argument("--port", type=int, default=4000, help="the router's port")
    parser.add_argument(
        "--proof-only", action="store_true", help="only the cost of the router's proof"
    )
    args = parser.parse_args()
    _proof_cost()
    if args.proof_only:
        return
    router_url = f"http://127.0.0.1:{args.port}/graphql"
    bench = _bench_router()
    subgraphs = bench._pinned(bench.other_cpus(), [bench.PYTHON, "bench/workload_subgraphs.py"])
    router = [
        str(Path(bench.PYTHON).parent / "unityplan"),
        "serve",
        "router",
        "--supergraph",
        str(bench.FIXTURES / "supergraph.graphql"),
        "--port",
        str(args.port),
    ]
    env = {
        "LOG_LEVEL": "WARNING",
        "ROUTER_GRAPHIQL": "false",
        "ROUTER_SUPERGRAPH_POLL_SECONDS": "0",
        "ROUTER_APQ_TTL_SECONDS": "0",
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    }
    with tempfile.TemporaryDirectory() as scratch:
        files = (Path(scratch) / "query.graphql", Path(scratch) / "expected.json")
        files[0].write_text(QUERY)
        with bench._process(subgraphs):
            expected = _answer_when_up(ACCOUNTS)
            files[1].write_text(json.dumps(expected, separators=(",", ":")))
            direct = _latency(bench, "direct to the subgraph", ACCOUNTS, files, args)
            with bench._process(bench._pinned("0", router), env):
                if _answer_when_up(router_url) != expected:
                    raise SystemExit("the router's answer differs from the subgraph's")
                routed = _latency(bench, "through the router", router_url, files, args)
    print()
    print(f"| path ({args.concurrency} connection) | req/s | p50 ms | p95 ms | p99 ms | wrong |")
    print("| --- | ---: | ---: | ---: | ---: | ---: |")
    for r in (direct, routed):
        print(
            f"| {r.name} | {r.rps:.0f} | {r.p50:.2f} | {r.p95:.2f} | {r.p99:.2f} "
            f"| {r.failures + r.mismatches} |"
        )
    print(
        f"\nrouter overhead: p50 {routed.p50 - direct.p50:+.2f} ms, "
        f"p99 {routed.p99 - direct.p99:+.2f} ms"
    )


def _proof_cost(rounds: int = 20_000) -> None:
    """p50/p99 of signing one subgraph request (router) and of checking it (subgraph gate:
    header, body digest, HMAC), on the representative `_entities` body."""
    from core.security.router_proof import PROOF_HEADER, ProofVerifier, RouterSigner

    key = "bench-key-" + "k" * 40
    signer, verifier = RouterSigner(key), ProofVerifier([key])
    forwarded = {"x-forwarded-for": "198.51.100.7", "user-agent": "bench/1.0"}
    signing, checking = [], []
    for _ in range(rounds):
        started = time.perf_counter()
        proof = signer.headers("POST", "/graphql", ENTITIES_BODY, forwarded)
        signed = time.perf_counter()
        pending = verifier.check_header(proof[PROOF_HEADER])
        digest = hashlib.sha256(ENTITIES_BODY).hexdigest()
        verifier.verify(pending, "POST", "/graphql", digest, forwarded)
        checked = time.perf_counter()
        signing.append((signed - started) * 1e6)
        checking.append((checked - signed) * 1e6)
    for name, samples in (("sign (router)", signing), ("check (subgraph)", checking)):
        samples.sort()
        p50, p99 = samples[len(samples) // 2], samples[int(len(samples) * 0.99)]
        print(
            f"router proof, {len(ENTITIES_BODY)} B body, {name}: p50 {p50:.1f} us, p99 {p99:.1f} us"
        )


def _answer_when_up(url: str, seconds: float = 60) -> object:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return httpx.post(url, json={"query": QUERY, "operationName": "TestQuery"}).json()
        except (httpx.HTTPError, ValueError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.3)


def _latency(
    bench: ModuleType, name: str, url: str, files: tuple[Path, Path], args: argparse.Namespace
) -> Any:
    bench._load(name, "-", url, args.warmup, args.concurrency, *files)
    result = bench._load(name, "-", url, args.seconds, args.concurrency, *files)
    print(f"  {name}: p50 {result.p50:.2f} ms, p99 {result.p99:.2f} ms", flush=True)
    return result


if __name__ == "__main__":
    main()
