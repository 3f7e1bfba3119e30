"""Fetching subgraph SDLs over HTTP (`{ _service { sdl } }`) for composition at start-up."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import aiohttp
import orjson

from router.composition.subgraph import SubgraphDefinition

_SERVICE_QUERY = orjson.dumps({"query": "{ _service { sdl } }"})


class SubgraphUnavailable(Exception):
    """A subgraph did not answer `_service { sdl }` in time."""


async def _fetch(session: aiohttp.ClientSession, name: str, url: str) -> SubgraphDefinition:
    try:
        async with session.post(
            url, data=_SERVICE_QUERY, headers={"content-type": "application/json"}
        ) as response:
            body = orjson.loads(await response.read())
    except (aiohttp.ClientError, OSError, TimeoutError, orjson.JSONDecodeError) as exc:
        raise SubgraphUnavailable(f"Subgraph '{name}' at {url} is not answering: {exc}") from exc
    sdl = (
        (body.get("data") or {}).get("_service", {}).get("sdl") if isinstance(body, dict) else None
    )
    if not isinstance(sdl, str):
        raise SubgraphUnavailable(f"Subgraph '{name}' at {url} did not return `_service {{ sdl }}`")
    return SubgraphDefinition(name, url, sdl)


async def fetch_subgraphs(
    urls: Mapping[str, str], *, wait_seconds: float = 0.0, timeout_seconds: float = 5.0
) -> list[SubgraphDefinition]:
    """Every subgraph's SDL; retries until `wait_seconds` have passed (subgraphs starting up)."""
    deadline = time.monotonic() + wait_seconds
    timeout = aiohttp.ClientTimeout(total=timeout_seconds)
    async with aiohttp.ClientSession(timeout=timeout) as session:
        while True:
            try:
                return list(await asyncio.gather(*(_fetch(session, n, u) for n, u in urls.items())))
            except SubgraphUnavailable:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.5)
