"""Cold query planning: p50 and p99 of `plan_operation` per operation, without any plan cache.

    .venv/bin/python bench/planning.py [--runs 50]
        [--audit-dir CHECKOUT --audit-url http://127.0.0.1:4200]

Three sets of operations:
- the shared benchmark workload (`/work/shared/bench-workload`, the same files as
  `tests/router/fixtures/`): its query must plan cold in at most 20 ms;
- a generated supergraph of 20 subgraphs with heavy `@shareable` overlap (every subgraph
  shares most fields of the entity chain Store -> Shelf -> Item with several others);
- with `--audit-dir` (a checkout of graphql-hive/federation-gateway-audit, for the suite names)
  and `--audit-url` (its `npm start serve` server), every query of every audit suite, on that
  suite's supergraph. Nothing of the audit is stored here; it is read from the server.

Each operation is planned `--runs` times, each time from its normalized operation with a fresh
planner (parsing is not counted); an operation that cannot be planned is reported as such. The
query graph is built once per supergraph, as the router does when it loads one: its build time
is printed on its own line.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from graphql import parse  # noqa: E402

from router.planning import (  # noqa: E402
    NormalizedOperation,
    PlanningError,
    normalize,
    plan_operation,
)
from router.planning.query_graph import build_query_graph  # noqa: E402
from router.supergraph import Supergraph, parse_supergraph  # noqa: E402
from tests.router.supergraphs import JOIN_HEADER  # noqa: E402

WORKLOAD = Path("/work/shared/bench-workload")
FIXTURES = ROOT / "tests" / "router" / "fixtures"
WORKLOAD_LIMIT_MS = 20.0


SUBGRAPHS = 20
FIELDS = 12  # per entity type
SHARED_BY = 6  # subgraphs that share each field


def overlap_supergraph() -> str:
    """20 subgraphs; Store, Shelf and Item are entities in all of them, and each of their
    fields is shared by `SHARED_BY` subgraphs, so most selections have many possible plans."""
    graphs = [f"G{index}" for index in range(SUBGRAPHS)]
    lines = [JOIN_HEADER.replace("  mutation: Mutation\n", ""), "enum join__Graph {"]
    lines += [
        f'  {g} @join__graph(name: "g{i}", url: "http://g{i}/graphql")'
        for i, g in enumerate(graphs)
    ]
    lines.append("}")
    every = " ".join(f"@join__type(graph: {g})" for g in graphs)
    lines.append(f"type Query {every} {{")
    lines.append("  stores: [Store!]! " + " ".join(f"@join__field(graph: {g})" for g in graphs[:4]))
    lines.append("}")
    children = {"Store": ("shelves", "[Shelf!]!"), "Shelf": ("items", "[Item!]!"), "Item": None}
    for number, (type_name, child) in enumerate(children.items()):
        keys = " ".join(f'@join__type(graph: {g}, key: "id")' for g in graphs)
        lines.append(f"type {type_name} {keys} {{")
        lines.append("  id: ID!")
        for field in range(FIELDS):
            owners = [graphs[(field * 3 + number + k) % SUBGRAPHS] for k in range(SHARED_BY)]
            joins = " ".join(f"@join__field(graph: {g})" for g in owners)
            lines.append(f"  f{field}: String {joins}")
        if child is not None:
            owners = [graphs[(number * 7 + k) % SUBGRAPHS] for k in range(SHARED_BY)]
            joins = " ".join(f"@join__field(graph: {g})" for g in owners)
            lines.append(f"  {child[0]}: {child[1]} {joins}")
        lines.append("}")
    return "\n".join(lines)


def overlap_operations() -> dict[str, str]:
    def fields(names: range) -> str:
        return " ".join(f"f{n}" for n in names)

    return {
        "overlap: one level, 4 fields": f"{{ stores {{ id {fields(range(4))} }} }}",
        "overlap: one level, all fields": f"{{ stores {{ id {fields(range(FIELDS))} }} }}",
        "overlap: three levels, all fields": (
            f"{{ stores {{ {fields(range(FIELDS))} shelves {{ {fields(range(FIELDS))}"
            f" items {{ {fields(range(FIELDS))} }} }} }} }}"
        ),
        "overlap: three levels, aliases": (
            f"{{ a: stores {{ {fields(range(0, FIELDS, 2))}"
            f" shelves {{ items {{ {fields(range(6))} }} }} }}"
            f" b: stores {{ {fields(range(1, FIELDS, 2))} shelves {{ {fields(range(3, 9))} }} }} }}"
        ),
    }


def _get(url: str) -> str:
    if not url.startswith("http://"):
        raise SystemExit(f"--audit-url must be an http:// URL, not {url!r}")
    request = urllib.request.Request(url, headers={"Accept": "application/json"})  # noqa: S310 (checked above)
    with urllib.request.urlopen(request, timeout=30) as answer:  # noqa: S310 (checked above)
        body: bytes = answer.read()
        return body.decode()


def audit_cases(audit_dir: Path, audit_url: str) -> Iterator[tuple[str, Supergraph, str]]:
    for suite in sorted(p.name for p in (audit_dir / "src" / "test-suites").iterdir()):
        graph = parse_supergraph(_get(f"{audit_url}/{suite}/supergraph"))
        for index, case in enumerate(json.loads(_get(f"{audit_url}/{suite}/tests"))):
            yield f"audit {suite}_{index}", graph, case["query"]


def measure(graph: Supergraph, operation: NormalizedOperation, runs: int) -> list[float] | str:
    timings = []
    for _ in range(runs):
        start = time.perf_counter()
        try:
            plan_operation(graph, operation)
        except PlanningError as exc:
            return f"not plannable: {exc}"
        timings.append((time.perf_counter() - start) * 1000)
    return timings


def graph_build(name: str, graph: Supergraph) -> None:
    """The query graph is built once per supergraph (when it is loaded), not per planning."""
    start = time.perf_counter()
    built = build_query_graph(graph)
    elapsed = (time.perf_counter() - start) * 1000
    edges = sum(len(e) for e in built.edges.values())
    print(
        f"{name + ': query graph':<48} {elapsed:7.2f} ms ({len(built.nodes)} nodes, {edges} edges)"
    )


def report(name: str, graph: Supergraph, query: str, runs: int) -> tuple[float, float] | None:
    result = measure(graph, normalize(parse(query), None), runs)
    if isinstance(result, str):
        print(f"{name:<48} {result}")
        return None
    ordered = sorted(result)
    p50 = statistics.median(ordered)
    p99 = ordered[min(len(ordered) - 1, round(0.99 * (len(ordered) - 1)))]
    print(f"{name:<48} p50 {p50:7.2f} ms   p99 {p99:7.2f} ms")
    return p50, p99


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=50)
    parser.add_argument("--audit-dir", type=Path)
    parser.add_argument("--audit-url", default="http://127.0.0.1:4200")
    args = parser.parse_args()
    folder = WORKLOAD if WORKLOAD.exists() else FIXTURES
    workload = parse_supergraph((folder / "supergraph.graphql").read_text())
    graph_build("workload", workload)
    worst = report(
        "workload (bench-workload query)",
        workload,
        (folder / "query.graphql").read_text(),
        args.runs,
    )
    overlap = parse_supergraph(overlap_supergraph())
    graph_build("overlap", overlap)
    for name, query in overlap_operations().items():
        report(name, overlap, query, args.runs)
    if args.audit_dir is not None:
        timings = []
        for name, graph, query in audit_cases(args.audit_dir, args.audit_url):
            found = report(name, graph, query, args.runs)
            if found is not None:
                timings.append(found)
        if timings:
            p50 = max(t[0] for t in timings)
            p99 = max(t[1] for t in timings)
            print(f"audit: {len(timings)} operations planned, worst p50/p99 {p50:.2f}/{p99:.2f} ms")
    if worst is None or worst[1] > WORKLOAD_LIMIT_MS:
        sys.exit(f"the workload query must plan cold in at most {WORKLOAD_LIMIT_MS:g} ms")


if __name__ == "__main__":
    main()
