"""The router's current supergraph: loaded at start-up, swapped atomically when its file changes."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
from collections.abc import Mapping
from pathlib import Path

from core.cache import create_redis
from core.config import Settings
from core.security.router_proof import RouterSigner
from router.composition import CompositionError, compose
from router.composition.remote import SubgraphUnavailable, fetch_subgraphs
from router.edge.http_rules import HeaderRules
from router.edge.limits import OperationLimits
from router.execution.client import SubgraphClient
from router.execution.entity_cache import EntityCache
from router.execution.entity_invalidation import EntityInvalidation
from router.execution.gateway import Gateway
from router.planning import PlanningOptions
from router.supergraph import Supergraph, SupergraphError, parse_supergraph

log = logging.getLogger("unityplan.router")


class RouterState:
    """Holds the gateway of the supergraph in service; requests take it once and keep it."""

    def __init__(self, settings: Settings, subgraphs: Mapping[str, str] | None = None) -> None:
        self.settings = settings
        # The subgraphs to compose when no supergraph file is given: name -> URL.
        self.subgraphs = dict(subgraphs or {})
        router = settings.router
        self.client = SubgraphClient(
            {},
            timeout_seconds=router.subgraph_timeout_seconds,
            timeouts=router.subgraph_timeouts,
            max_connections=router.max_subgraph_connections,
            share_fetches=router.dedup_subgraph_fetches,
            retries=router.subgraph_retries,
            headers_only_to=HeaderRules.from_settings(router).only_to,
            signer=RouterSigner.from_settings(settings),
        )
        # Optional entity caching (ROUTER_ENTITY_CACHE_TTLS), evicted by domain events.
        self.entity_cache: EntityCache | None = None
        self.invalidation: EntityInvalidation | None = None
        if router.entity_cache_ttls:
            self.entity_cache = EntityCache(
                create_redis(settings.redis), settings.redis.key_prefix, router.entity_cache_ttls
            )
            self.invalidation = EntityInvalidation(settings, self.entity_cache)
        self.gateway: Gateway | None = None
        self._signature: tuple[float, int] | None = None
        self._watcher: asyncio.Task[None] | None = None

    def use(self, supergraph: Supergraph) -> Gateway:
        """Serve `supergraph` from now on (in-flight requests finish on the previous one)."""
        urls = {name: s.url for name, s in supergraph.subgraphs.items()}
        urls.update(self.settings.router.subgraph_urls)
        router = self.settings.router
        gateway = Gateway(
            supergraph,
            self.client.with_urls(urls),
            router.plan_cache_size,
            limits=OperationLimits(
                max_depth=router.max_depth,
                max_aliases=router.max_aliases,
                max_root_fields=router.max_root_fields,
                max_tokens=router.max_tokens,
                max_cost=router.max_cost,
                max_directives=router.max_directives,
            ),
            suggestions=self.settings.app.env == "development",
            entity_cache=self.entity_cache,
            planning=PlanningOptions(
                max_options=router.planning_max_options,
                timeout_seconds=router.planning_timeout_seconds,
                override_labels=frozenset(router.override_labels),
            ),
        )
        self.gateway = gateway
        return gateway

    @property
    def supergraph_path(self) -> Path | None:
        path = self.settings.services.supergraph_path
        return Path(path) if path else None

    def _file_signature(self, path: Path) -> tuple[float, int]:
        stat = os.stat(path)
        return (stat.st_mtime, stat.st_size)

    async def compose_from_subgraphs(self) -> None:
        """Compose the supergraph from the subgraphs' `_service { sdl }`."""
        if not self.subgraphs:
            raise SupergraphError(
                "No supergraph: SUPERGRAPH_PATH is not set and no subgraphs given"
            )
        urls = dict(self.subgraphs)
        urls.update({n: u for n, u in self.settings.router.subgraph_urls.items() if n in urls})
        try:
            definitions = await fetch_subgraphs(urls, signer=self.client.signer, wait_seconds=30.0)
            sdl = compose(definitions)
        except (SubgraphUnavailable, CompositionError) as exc:
            raise SupergraphError(str(exc)) from exc
        self.use(parse_supergraph(sdl))
        log.info("supergraph composed from subgraphs %s", ", ".join(sorted(urls)))

    def load_file(self) -> None:
        """Load SUPERGRAPH_PATH; raises SupergraphError (at start-up the router must not run)."""
        path = self.supergraph_path
        if path is None:
            raise SupergraphError("No supergraph file: SUPERGRAPH_PATH is not set")
        try:
            signature = self._file_signature(path)
            sdl = path.read_text(encoding="utf-8")
        except OSError as exc:
            raise SupergraphError(
                f"Cannot read the supergraph file {path}: {exc.strerror}"
            ) from exc
        self.use(parse_supergraph(sdl))
        self._signature = signature
        log.info("supergraph loaded from %s", path)

    def reload_if_changed(self) -> bool:
        """Swap in the file's supergraph if it changed; an invalid file is refused and logged."""
        path = self.supergraph_path
        if path is None:
            return False
        try:
            signature = self._file_signature(path)
        except OSError:
            log.error("supergraph file %s is missing; still serving the previous one", path)
            return False
        if signature == self._signature:
            return False
        self._signature = signature
        try:
            self.use(parse_supergraph(path.read_text(encoding="utf-8")))
        except (SupergraphError, OSError, UnicodeDecodeError) as exc:
            log.error("supergraph file %s refused, still serving the previous one: %s", path, exc)
            return False
        log.info("supergraph reloaded from %s", path)
        return True

    async def _watch(self, interval: float) -> None:
        while True:
            await asyncio.sleep(interval)
            self.reload_if_changed()

    async def start(self) -> None:
        if self.invalidation is not None:
            await self.invalidation.start()
        if self.gateway is None:
            if self.supergraph_path is None:
                await self.compose_from_subgraphs()
            else:
                self.load_file()
        interval = self.settings.router.supergraph_poll_seconds
        if interval > 0 and self.supergraph_path is not None and self._watcher is None:
            self._watcher = asyncio.create_task(self._watch(interval))

    async def stop(self) -> None:
        if self._watcher is not None:
            self._watcher.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._watcher
            self._watcher = None
        await self.client.aclose()
        if self.invalidation is not None:
            await self.invalidation.stop()
        if self.entity_cache is not None:
            await self.entity_cache.redis.aclose()
