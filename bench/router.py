"""Router benchmark: throughput and latency of the router on the federation benchmark workload,
side by side with a reference Node gateway (@graphql-hive/gateway) on the same subgraphs.

    .venv/bin/python bench/router.py [--seconds 20] [--concurrency 50] [--dedup on|off|both]
                                     [--skip-reference]

Needs Node 20+ and `npm install` in bench/gateway (the reference gateway and nothing else).
Each gateway runs pinned to CPU 0 (`taskset`); the static subgraphs and the load generator
share the other CPUs. Every response is checked against the workload's expected answer.

`--dedup on` turns inbound in-flight de-duplication on in both gateways (identical concurrent
requests share one execution), `off` turns it off in both; subgraph fetch de-duplication stays
at both gateways' default (on) either way.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
FIXTURES = ROOT / "tests" / "router" / "fixtures"
GATEWAY_DIR = ROOT / "bench" / "gateway"
PYTHON = sys.executable


@dataclass
class Result:
    name: str
    dedup: str
    requests: int
    failures: int
    mismatches: int
    rps: float
    p50: float
    p95: float
    p99: float


def _pinned(cpus: str, command: list[str]) -> list[str]:
    if shutil.which("taskset") and (os.cpu_count() or 1) > 1:
        return ["taskset", "-c", cpus, *command]
    return command


@contextmanager
def _process(
    command: list[str], env: dict[str, str] | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    process = subprocess.Popen(  # noqa: S603 - our own fixed commands
        command,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    try:
        yield process
    finally:
        if process.poll() is None:
            os.killpg(process.pid, signal.SIGTERM)
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)
                process.wait()


def _wait_until_answering(url: str, process: subprocess.Popen[bytes], seconds: float = 60) -> None:
    query = (FIXTURES / "query.graphql").read_text()
    expected = json.loads((FIXTURES / "expected-response.json").read_text())
    deadline = time.monotonic() + seconds
    last = ""
    while time.monotonic() < deadline:
        if process.poll() is not None:
            stderr = process.stderr.read().decode() if process.stderr else ""
            raise SystemExit(f"{url} exited early:\n{stderr[-2000:]}")
        try:
            response = httpx.post(
                url, json={"query": query, "operationName": "TestQuery"}, timeout=10
            )
            if response.json() == expected:
                return
            last = response.text[:500]
        except (httpx.HTTPError, ValueError) as exc:
            last = str(exc)
        time.sleep(0.3)
    raise SystemExit(f"{url} never gave the expected answer; last: {last}")


def other_cpus() -> str:
    """The CPUs besides the gateway's CPU 0 (for subgraphs and load)."""
    count = os.cpu_count() or 1
    return f"1-{count - 1}" if count > 1 else "0"


def _load(
    name: str,
    dedup: str,
    url: str,
    seconds: float,
    concurrency: int,
    query_file: Path = FIXTURES / "query.graphql",
    expected_file: Path = FIXTURES / "expected-response.json",
) -> Result:
    command = _pinned(
        other_cpus(),
        [
            "node",
            str(GATEWAY_DIR / "load.mjs"),
            url,
            str(seconds),
            str(concurrency),
            str(query_file),
            str(expected_file),
        ],
    )
    output = subprocess.run(  # noqa: S603 - our own fixed command
        command, cwd=ROOT, check=True, capture_output=True, text=True
    ).stdout
    data = json.loads(output.strip().splitlines()[-1])
    return Result(
        name,
        dedup,
        data["requests"],
        data["failures"],
        data["mismatches"],
        data["rps"],
        data["p50"],
        data["p95"],
        data["p99"],
    )


def _measure(
    name: str, dedup: str, url: str, process: subprocess.Popen[bytes], args: argparse.Namespace
) -> Result:
    _wait_until_answering(url, process)
    _load(name, dedup, url, args.warmup, args.concurrency)
    result = _load(name, dedup, url, args.seconds, args.concurrency)
    print(
        f"  {name} (de-dup {dedup}): {result.rps:.1f} req/s, p50 {result.p50:.1f} ms, "
        f"p95 {result.p95:.1f} ms, p99 {result.p99:.1f} ms",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--warmup", type=float, default=5)
    parser.add_argument("--concurrency", type=int, default=50)
    parser.add_argument("--dedup", choices=("on", "off", "both"), default="both")
    parser.add_argument("--skip-reference", action="store_true", help="Measure the router only.")
    args = parser.parse_args()
    supergraph = FIXTURES / "supergraph.graphql"
    results: list[Result] = []
    others = other_cpus()
    modes = ("off", "on") if args.dedup == "both" else (args.dedup,)
    with _process(_pinned(others, [PYTHON, "bench/workload_subgraphs.py"])):
        time.sleep(1.5)
        for dedup in modes:
            results += _run_mode(dedup, supergraph, args)
    print()
    print(
        "| gateway (1 CPU) | inbound de-dup | req/s | p50 ms | p95 ms | p99 ms | failed | wrong |"
    )
    print("| --- | --- | ---: | ---: | ---: | ---: | ---: | ---: |")
    for r in results:
        print(
            f"| {r.name} | {r.dedup} | {r.rps:.1f} | {r.p50:.1f} | {r.p95:.1f} | {r.p99:.1f} "
            f"| {r.failures} | {r.mismatches} |"
        )
    print()
    for dedup in modes:
        pair = [r for r in results if r.dedup == dedup]
        if len(pair) == 2 and pair[1].rps:
            ratio = pair[0].rps / pair[1].rps
            print(f"router / reference throughput, de-dup {dedup}: {ratio:.2f}")


def _run_mode(dedup: str, supergraph: Path, args: argparse.Namespace) -> list[Result]:
    """The router, then the reference gateway, with inbound de-duplication `dedup`."""
    results: list[Result] = []
    env = {
        "LOG_LEVEL": "WARNING",
        "ROUTER_GRAPHIQL": "false",
        "ROUTER_SUPERGRAPH_POLL_SECONDS": "0",
        "ROUTER_DEDUP_QUERIES": "true" if dedup == "on" else "false",
        # Like the reference gateway's default: no persisted queries. Token checks keep their
        # revocation list in Redis (the benchmark's requests carry no token).
        "ROUTER_APQ_TTL_SECONDS": "0",
        "REDIS_URL": os.environ.get("REDIS_URL", "redis://127.0.0.1:6379/0"),
    }
    router_command = [
        str(Path(PYTHON).parent / "unityplan"),
        "serve",
        "router",
        "--supergraph",
        str(supergraph),
        "--port",
        "4000",
    ]
    with _process(_pinned("0", router_command), env) as router:
        url = "http://127.0.0.1:4000/graphql"
        results.append(_measure("unityplan router", dedup, url, router, args))
    if args.skip_reference:
        return results
    binary = GATEWAY_DIR / "node_modules" / ".bin" / "hive-gateway"
    if not binary.exists():
        raise SystemExit("Reference gateway missing: run `npm install` in bench/gateway")
    hive_command = [str(binary), "supergraph", str(supergraph), "--port", "4001", "--fork", "0"]
    if dedup == "on":
        hive_command += ["--config-path", str(GATEWAY_DIR / "gateway-dedup.mjs")]
    with _process(_pinned("0", hive_command), {"NODE_ENV": "production"}) as hive:
        url = "http://127.0.0.1:4001/graphql"
        results.append(_measure("@graphql-hive/gateway", dedup, url, hive, args))
    return results


if __name__ == "__main__":
    main()
