"""HTTP to subgraphs: one pooled keep-alive client, per-subgraph URLs and timeouts."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import httpx
import orjson


class SubgraphFailure(Exception):
    """A subgraph could not be reached, timed out, or did not answer GraphQL."""

    def __init__(self, subgraph: str, message: str, code: str) -> None:
        super().__init__(message)
        self.subgraph = subgraph
        self.message = message
        self.code = code


_JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}


class SubgraphClient:
    """Sends GraphQL requests to subgraphs over one shared connection pool."""

    def __init__(
        self,
        urls: Mapping[str, str],
        *,
        timeout_seconds: float = 30.0,
        timeouts: Mapping[str, float] | None = None,
        max_connections: int = 200,
        http: httpx.AsyncClient | None = None,
    ) -> None:
        self.urls = dict(urls)
        self.timeout_seconds = timeout_seconds
        self.timeouts = dict(timeouts or {})
        self._http = http or httpx.AsyncClient(
            limits=httpx.Limits(
                max_connections=max_connections, max_keepalive_connections=max_connections
            ),
            timeout=timeout_seconds,
        )

    def with_urls(self, urls: Mapping[str, str]) -> SubgraphClient:
        """The same connection pool and timeouts, for another set of subgraph URLs."""
        return SubgraphClient(
            urls, timeout_seconds=self.timeout_seconds, timeouts=self.timeouts, http=self._http
        )

    async def aclose(self) -> None:
        await self._http.aclose()

    async def request(
        self, subgraph: str, payload: Mapping[str, Any], headers: Mapping[str, str]
    ) -> dict[str, Any]:
        """POST one GraphQL request; returns the decoded response body."""
        url = self.urls.get(subgraph)
        if not url:
            raise SubgraphFailure(
                subgraph, f"No URL configured for subgraph '{subgraph}'", "SUBREQUEST_HTTP_ERROR"
            )
        try:
            response = await self._http.post(
                url,
                content=orjson.dumps(payload),
                headers={**_JSON_HEADERS, **headers},
                timeout=self.timeouts.get(subgraph, self.timeout_seconds),
            )
        except httpx.TimeoutException as exc:
            raise SubgraphFailure(
                subgraph, f"Subgraph '{subgraph}' timed out", "GATEWAY_TIMEOUT"
            ) from exc
        except httpx.HTTPError as exc:
            raise SubgraphFailure(
                subgraph, f"Subgraph '{subgraph}' could not be reached", "SUBREQUEST_HTTP_ERROR"
            ) from exc
        try:
            body = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or ("data" not in body and "errors" not in body):
            raise SubgraphFailure(
                subgraph,
                f"Subgraph '{subgraph}' answered HTTP {response.status_code} "
                "without a GraphQL response",
                "SUBREQUEST_HTTP_ERROR",
            )
        return body
