"""Fetching subgraph SDLs over HTTP (`{ _service { sdl } }`) for composition at start-up, signed
like every request of the router (subgraphs answer nothing else)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Mapping

import aiohttp
import orjson
from yarl import URL

from core.security.router_proof import RouterSigner
from router.composition.subgraph import SubgraphDefinition

_SERVICE_QUERY = orjson.dumps({"query": "{ _service { sdl } }"})


class SubgraphUnavailable(Exception):
    """A subgraph did not answer `_service { sdl }` in time."""


async def _fetch(
    session: aiohttp.ClientSession, name: str, url: str, signer: RouterSigner | None
) -> SubgraphDefinition:
    headers = {"content-type": "application/json"}
    if signer is not None:
        headers.update(signer.headers("POST", URL(url).raw_path_qs, _SERVICE_QUERY, {}))
    try:
        async with session.post(url, data=_SERVICE_QUERY, headers=headers) as response:
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
    urls: Mapping[str, str],
    *,
    signer: RouterSigner | None = None,
    wait_seconds: float = 0.0,
    timeout_seconds: float = 5.0,
) -> list[SubgraphDefinition]:
    """Every subgraph's SDL; retries until `wait_seconds` have passed (subgraphs starting up)."""
    deadline = time.monotonic() + wait_seconds
    timeout = aiohttp.ClientTimeout(total=timeout_seconds)
    # No User-Agent of aiohttp's own: the proof covers the (absent) client agent.
    async with aiohttp.ClientSession(timeout=timeout, skip_auto_headers=("User-Agent",)) as session:
        while True:
            try:
                fetches = (_fetch(session, n, u, signer) for n, u in urls.items())
                return list(await asyncio.gather(*fetches))
            except SubgraphUnavailable:
                if time.monotonic() >= deadline:
                    raise
                await asyncio.sleep(0.5)
