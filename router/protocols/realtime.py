"""What the long-lived doors (WebSocket, SSE, multipart) share: the pipeline, connection limits,
keep-alives, SSE replay logs, and draining at shutdown."""

from __future__ import annotations

import asyncio
import signal
import threading
from collections.abc import Mapping
from dataclasses import dataclass, field
from types import FrameType
from typing import Any

from core.cache import create_redis
from core.config import Settings
from router.edge.http_rules import TrustedProxies
from router.pipeline.pipeline import OperationPipeline
from router.subscriptions import SubscriptionService
from router.subscriptions.replay import ReplayLogs

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


def client_address(scope: Mapping[str, Any], *, proxies: TrustedProxies) -> str:
    """Who the connection counts against: the client's IP (X-Forwarded-For behind a trusted
    proxy, as for every edge limit), so a load balancer's address is not everyone's."""
    headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope["headers"]}
    return proxies.client_address(headers, scope.get("client")) or "unknown"


@dataclass
class Realtime:
    """The long-lived side of the router app."""

    settings: Settings
    pipeline: OperationPipeline
    limits: ConnectionLimits
    # SSE resumption logs; None without Redis (then SSE streams cannot be resumed).
    replay: ReplayLogs | None
    _tasks: set[asyncio.Task[None]] = field(default_factory=set)

    @classmethod
    def create(cls, settings: Settings, pipeline: OperationPipeline) -> Realtime:
        router = settings.router
        replay = None
        if settings.redis.url:
            replay = ReplayLogs(
                lambda: create_redis(settings.redis),
                settings.redis.key_prefix,
                retention_seconds=router.sse_retention_seconds,
                max_events=router.sse_retained_events,
            )
        return cls(
            settings,
            pipeline,
            ConnectionLimits(
                router.max_subscription_connections,
                router.max_subscription_connections_per_client,
            ),
            replay,
        )

    @property
    def draining(self) -> bool:
        """Shutting down: new subscriptions are refused."""
        return self.pipeline.draining

    @draining.setter
    def draining(self, value: bool) -> None:
        self.pipeline.draining = value

    @property
    def service(self) -> SubscriptionService:
        return self.pipeline.subscriptions

    def client_of(self, scope: Mapping[str, Any]) -> str:
        return client_address(scope, proxies=TrustedProxies.from_settings(self.settings))

    @property
    def keepalive_seconds(self) -> float:
        return self.settings.router.subscription_keepalive_seconds

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
        if self.replay is not None:
            await self.replay.close()
        await self.service.close()
