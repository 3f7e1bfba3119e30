"""HTTP to subgraphs: one pooled keep-alive session, per-subgraph URLs and timeouts, and the
router's proof (`core.security.router_proof`) on every request, vouching for the client's
address and User-Agent.

aiohttp rather than httpx: on a federated request with a dozen subgraph calls its lower
per-request overhead (measured ~4x) is most of the router's own cost.
"""

from __future__ import annotations

import asyncio
from collections.abc import Mapping
from typing import Any

import aiohttp
import orjson
from yarl import URL

from core.security.router_proof import RouterSigner
from router.execution.fetch_sharing import Inflight, fetch_key, is_query_document
from router.execution.fetch_telemetry import subgraph_fetch


class SubgraphFailure(Exception):
    """A subgraph could not be reached, timed out, or did not answer GraphQL."""

    def __init__(self, subgraph: str, message: str, code: str) -> None:
        super().__init__(message)
        self.subgraph = subgraph
        self.message = message
        self.code = code


class _ConnectionFailed(Exception):
    """The connection failed before any answer (the request may be retried if idempotent)."""

    def __init__(self, failure: SubgraphFailure) -> None:
        super().__init__(failure.message)
        self.failure = failure


_JSON_HEADERS = {"content-type": "application/json", "accept": "application/json"}


class _Pool:
    """The shared aiohttp session, created inside the running event loop on first use."""

    def __init__(self, max_connections: int, share_fetches: bool = True) -> None:
        self.max_connections = max_connections
        self.session: aiohttp.ClientSession | None = None
        # Identical query fetches in flight (same subgraph, body and viewer headers) go out once.
        self.inflight: Inflight[tuple[str, bytes, tuple[tuple[str, str], ...]], tuple[int, bytes]]
        self.inflight = Inflight()
        self.share_fetches = share_fetches

    def get(self) -> aiohttp.ClientSession:
        if self.session is None or self.session.closed:
            self.session = aiohttp.ClientSession(
                connector=aiohttp.TCPConnector(
                    limit=self.max_connections,
                    limit_per_host=self.max_connections,
                    ttl_dns_cache=300,
                ),
                json_serialize=lambda value: orjson.dumps(value).decode(),
                skip_auto_headers=("User-Agent",),
            )
        return self.session

    async def close(self) -> None:
        if self.session is not None and not self.session.closed:
            await self.session.close()


class SubgraphClient:
    """Sends GraphQL requests to subgraphs over one shared connection pool."""

    def __init__(
        self,
        urls: Mapping[str, str],
        *,
        timeout_seconds: float = 30.0,
        timeouts: Mapping[str, float] | None = None,
        max_connections: int = 200,
        pool: _Pool | None = None,
        share_fetches: bool = True,
        retries: int = 0,
        headers_only_to: Mapping[str, frozenset[str]] | None = None,
        signer: RouterSigner | None = None,
    ) -> None:
        self.urls = dict(urls)
        # Signs every request (subgraphs refuse unsigned ones); None only for foreign subgraphs
        # that do not check, such as the benchmark's.
        self.signer = signer
        # The path and query each subgraph sees, as signed.
        self._targets = {name: URL(url).raw_path_qs for name, url in self.urls.items()}
        # Extra attempts of an idempotent fetch whose connection failed before an answer.
        self.retries = retries
        # Client headers that go only to some subgraphs (the others go to all).
        self.headers_only_to = dict(headers_only_to or {})
        self.timeout_seconds = timeout_seconds
        self.timeouts = {
            name: aiohttp.ClientTimeout(total=seconds) for name, seconds in (timeouts or {}).items()
        }
        self._raw_timeouts = dict(timeouts or {})
        self._default_timeout = aiohttp.ClientTimeout(total=timeout_seconds)
        self._pool = pool or _Pool(max_connections, share_fetches)

    def with_urls(self, urls: Mapping[str, str]) -> SubgraphClient:
        """The same connection pool and timeouts, for another set of subgraph URLs."""
        return SubgraphClient(
            urls,
            timeout_seconds=self.timeout_seconds,
            timeouts=self._raw_timeouts,
            pool=self._pool,
            retries=self.retries,
            headers_only_to=self.headers_only_to,
            signer=self.signer,
        )

    async def aclose(self) -> None:
        await self._pool.close()

    async def request(
        self,
        subgraph: str,
        payload: Mapping[str, Any],
        headers: Mapping[str, str],
        *,
        idempotent: bool = True,
        form: aiohttp.FormData | None = None,
    ) -> dict[str, Any]:
        """POST one GraphQL request (multipart `form` for uploads); returns the decoded body.

        Only an idempotent request is retried, and only when its connection failed."""
        if self.headers_only_to:
            headers = {
                name: value
                for name, value in headers.items()
                if subgraph in self.headers_only_to.get(name, (subgraph,))
            }
        with subgraph_fetch(subgraph, headers) as fetch:
            attempts = 1 + (self.retries if idempotent and form is None else 0)
            for attempt in range(attempts):
                try:
                    body = await self._post(subgraph, payload, fetch.headers, form)
                    break
                except _ConnectionFailed as failed:
                    if attempt + 1 == attempts:
                        raise failed.failure from failed.__cause__
            fetch.answered(body)
            return body

    async def _post(
        self,
        subgraph: str,
        payload: Mapping[str, Any],
        headers: Mapping[str, str],
        form: aiohttp.FormData | None = None,
    ) -> dict[str, Any]:
        url = self.urls.get(subgraph)
        if not url:
            raise SubgraphFailure(
                subgraph, f"No URL configured for subgraph '{subgraph}'", "SUBREQUEST_HTTP_ERROR"
            )
        sent = {**_JSON_HEADERS, **headers} if headers else _JSON_HEADERS
        data: bytes
        if form is not None:
            # Serialized here so that the proof can cover the very bytes sent.
            multipart = form()
            data = await multipart.as_bytes()
            sent = {**sent, "content-type": multipart.content_type}
        else:
            data = orjson.dumps(payload)
        if self.signer is not None:
            sent = {**sent, **self.signer.headers("POST", self._targets[subgraph], data, headers)}
        if form is None and self._pool.share_fetches and is_query_document(payload.get("query")):
            status, content = await self._pool.inflight.share(
                fetch_key(subgraph, data, headers),
                lambda: self._exchange(subgraph, url, data, sent),
            )
        else:
            status, content = await self._exchange(subgraph, url, data, sent)
        try:
            body = orjson.loads(content)
        except orjson.JSONDecodeError:
            body = None
        if not isinstance(body, dict) or ("data" not in body and "errors" not in body):
            raise SubgraphFailure(
                subgraph,
                f"Subgraph '{subgraph}' answered HTTP {status} without a GraphQL response",
                "SUBREQUEST_HTTP_ERROR",
            )
        return body

    async def _exchange(
        self, subgraph: str, url: str, data: bytes, headers: Mapping[str, str]
    ) -> tuple[int, bytes]:
        """One HTTP exchange with a subgraph; several identical fetches may await its answer."""
        try:
            async with self._pool.get().post(
                url,
                data=data,
                headers=headers,
                timeout=self.timeouts.get(subgraph, self._default_timeout),
            ) as response:
                status = response.status
                content = await response.read()
        except TimeoutError as exc:
            raise SubgraphFailure(
                subgraph, f"Subgraph '{subgraph}' timed out", "GATEWAY_TIMEOUT"
            ) from exc
        except (aiohttp.ClientConnectionError, ConnectionError) as exc:
            # Nothing was answered: a retry cannot do the work twice for an idempotent fetch.
            failure = SubgraphFailure(
                subgraph, f"Subgraph '{subgraph}' could not be reached", "SUBREQUEST_HTTP_ERROR"
            )
            raise _ConnectionFailed(failure) from exc
        except (aiohttp.ClientError, OSError, asyncio.IncompleteReadError) as exc:
            raise SubgraphFailure(
                subgraph, f"Subgraph '{subgraph}' could not be reached", "SUBREQUEST_HTTP_ERROR"
            ) from exc
        return status, content
