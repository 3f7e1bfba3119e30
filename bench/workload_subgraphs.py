"""The benchmark's four subgraphs, made static: each distinct request is computed once, then
answered from memory, so a benchmark measures the gateway and not the subgraphs.

    python bench/workload_subgraphs.py [--base-port 4201]
"""

from __future__ import annotations

import argparse
import asyncio
import sys
from pathlib import Path
from typing import Any

import uvicorn

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from router.supergraph import parse_supergraph  # noqa: E402
from tests.router.subgraph_kit import FakeSubgraph  # noqa: E402
from tests.router.supergraphs import bench_supergraph  # noqa: E402
from tests.router.workload import workload_subgraphs  # noqa: E402

ORDER = ("accounts", "inventory", "products", "reviews")


class StaticSubgraph:
    """Answers each distinct request body from a cache filled by the real subgraph."""

    def __init__(self, subgraph: FakeSubgraph) -> None:
        self.subgraph = subgraph
        self.answers: dict[bytes, bytes] = {}

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.subgraph.app(scope, receive, send)
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        answer = self.answers.get(body)
        if answer is None:
            answer = await self._compute(scope, body)
            if len(self.answers) < 10_000:
                self.answers[body] = answer
        await send(
            {
                "type": "http.response.start",
                "status": 200,
                "headers": [
                    (b"content-type", b"application/json"),
                    (b"content-length", str(len(answer)).encode()),
                ],
            }
        )
        await send({"type": "http.response.body", "body": answer})

    async def _compute(self, scope: dict[str, Any], body: bytes) -> bytes:
        replayed = False
        captured: list[bytes] = []

        async def receive() -> dict[str, Any]:
            nonlocal replayed
            if replayed:
                return {"type": "http.disconnect"}
            replayed = True
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.body":
                captured.append(message.get("body", b""))

        await self.subgraph.app(scope, receive, send)
        self.subgraph.requests.clear()
        return b"".join(captured)


async def serve_all(base_port: int) -> None:
    subgraphs = workload_subgraphs(parse_supergraph(bench_supergraph()))
    servers = [
        uvicorn.Server(
            uvicorn.Config(
                StaticSubgraph(subgraphs[name]),
                host="127.0.0.1",
                port=base_port + index,
                log_level="warning",
                lifespan="off",
                interface="asgi3",
                access_log=False,
            )
        )
        for index, name in enumerate(ORDER)
    ]
    await asyncio.gather(*(server.serve() for server in servers))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--base-port", type=int, default=4201)
    args = parser.parse_args()
    asyncio.run(serve_all(args.base_port))


if __name__ == "__main__":
    main()
