"""What every subscription transport shares: connection limits, the current gateway, starting a
client's subscription from a GraphQL request payload."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from core.cache import create_redis
from core.config import Settings
from router.edge.authentication import EdgeAuthenticator
from router.edge.http_rules import client_address as edge_client_address
from router.edge.persisted import PersistedQueryError
from router.execution import Gateway
from router.subscriptions import (
    SubscriptionRequestError,
    SubscriptionService,
    Viewer,
)
from router.subscriptions.replay import ReplayLogs
from router.transport.http import OperationRequest

# Close code for a client cut off because it did not read its events in time (WebSocket).
SLOW_CONSUMER_CLOSE = 4413
SLOW_CONSUMER_REASON = "Slow consumer: events were not read in time"
# Close code when the router already serves as many subscription connections as allowed.
TOO_MANY_CONNECTIONS_CLOSE = 1013


class ConnectionLimits:
    """Open subscription connections, counted in total and per client address."""

    def __init__(self, total: int, per_client: int) -> None:
        self.total = total
        self.per_client = per_client
        self.open = 0
        self._by_client: dict[str, int] = {}

    def acquire(self, client: str) -> str | None:
        """None when the connection may open (then `release` it), else why not."""
        if self.open >= self.total:
            return "The router serves as many subscription connections as it may"
        if self._by_client.get(client, 0) >= self.per_client:
            return "Too many subscription connections from this client"
        self.open += 1
        self._by_client[client] = self._by_client.get(client, 0) + 1
        return None

    def release(self, client: str) -> None:
        self.open -= 1
        left = self._by_client.get(client, 1) - 1
        if left > 0:
            self._by_client[client] = left
        else:
            self._by_client.pop(client, None)


def client_address(scope: Mapping[str, Any], *, trust_forwarded_for: bool) -> str:
    """Who the connection counts against: the client's IP (X-Forwarded-For behind a trusted
    proxy, as for every edge limit), so a load balancer's address is not everyone's."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    found = edge_client_address(
        headers, scope.get("client"), trust_forwarded_for=trust_forwarded_for
    )
    return found or "unknown"


def _bad(message: str) -> list[dict[str, Any]]:
    return [{"message": message, "extensions": {"code": "BAD_REQUEST"}}]


@dataclass
class Realtime:
    """The subscription side of the router app."""

    settings: Settings
    service: SubscriptionService
    gateway: Callable[[], Gateway | None]
    limits: ConnectionLimits
    replay: ReplayLogs
    # The edge's persisted-query / trusted-documents resolution, when configured.
    documents: Callable[[OperationRequest], Awaitable[OperationRequest]] | None = None
    draining: bool = False
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    def create(
        cls,
        settings: Settings,
        gateway: Callable[[], Gateway | None],
        authenticator: EdgeAuthenticator | None = None,
        documents: Callable[[OperationRequest], Awaitable[OperationRequest]] | None = None,
    ) -> Realtime:
        router = settings.router
        return cls(
            settings,
            SubscriptionService(settings, authenticator),
            gateway,
            ConnectionLimits(
                router.max_subscription_connections,
                router.max_subscription_connections_per_client,
            ),
            ReplayLogs(
                lambda: create_redis(settings.redis),
                settings.redis.key_prefix,
                retention_seconds=router.sse_retention_seconds,
                max_events=router.sse_retained_events,
            ),
            documents,
        )

    def client_of(self, scope: Mapping[str, Any]) -> str:
        return client_address(scope, trust_forwarded_for=self.settings.auth.trust_forwarded_for)

    @property
    def keepalive_seconds(self) -> float:
        return self.settings.router.subscription_keepalive_seconds

    async def start(
        self,
        payload: Any,
        viewer: Viewer | None,
        on_overflow: Callable[[], None] | None = None,
    ) -> AsyncIterator[bytes]:
        """The responses of the subscription a client asked for with `payload` (`query`,
        `variables`, `operationName`, `extensions`); `SubscriptionRequestError` when it cannot
        start. Persisted queries and trusted documents apply as for every request."""
        if not isinstance(payload, dict):
            raise SubscriptionRequestError(_bad("A subscription needs a query"))
        query, name = payload.get("query"), payload.get("operationName")
        variables, extensions = payload.get("variables"), payload.get("extensions")
        request = OperationRequest(
            query=query if isinstance(query, str) else "",
            operation_name=name if isinstance(name, str) else None,
            variables=variables if isinstance(variables, dict) else None,
            extensions=extensions if isinstance(extensions, dict) else None,
        )
        if self.documents is not None:
            try:
                request = await self.documents(request)
            except PersistedQueryError as refused:
                raise SubscriptionRequestError(refused.errors) from None
        if not request.query:
            raise SubscriptionRequestError(_bad("A subscription needs a query"))
        gateway = self.gateway()
        if self.draining:
            raise SubscriptionRequestError(
                [{"message": "The router is shutting down", "extensions": {"code": "UNAVAILABLE"}}]
            )
        if gateway is None:
            raise SubscriptionRequestError(
                [
                    {
                        "message": "The router has no supergraph yet",
                        "extensions": {"code": "UNAVAILABLE"},
                    }
                ]
            )
        prepared = self.service.prepare(gateway, request.query, request.operation_name)
        variables = self.service.variables(gateway, prepared, request.variables)
        return self.service.events(gateway, prepared, variables, viewer, on_overflow)

    async def drain(self) -> None:
        """Complete every subscription cleanly (shutting down): upstreams end, each client gets
        its protocol's `complete`, and new subscriptions are refused."""
        self.draining = True
        await self.service.hub.close()

    def drain_on_sigterm(self) -> None:
        """Chain onto the server's SIGTERM handler (uvicorn's), so subscriptions complete
        before the server waits for open connections, which long-lived streams would hold."""
        if threading.current_thread() is not threading.main_thread():
            return
        previous = signal.getsignal(signal.SIGTERM)
        if not hasattr(getattr(previous, "__self__", None), "should_exit"):
            return  # not served by uvicorn: leave the process's handling alone
        loop = asyncio.get_running_loop()

        def handler(signum: int, frame: FrameType | None) -> None:
            loop.call_soon_threadsafe(lambda: self._tasks.add(loop.create_task(self.drain())))
            if callable(previous):
                previous(signum, frame)

        signal.signal(signal.SIGTERM, handler)

    async def close(self) -> None:
        await self.replay.close()
        await self.service.close()
