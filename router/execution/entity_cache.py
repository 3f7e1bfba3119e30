"""Entity caching in Redis (off by default): `_entities` answers of the types configured as
cacheable, kept per entity, fetched selection and viewer, and evicted by the domain events
that change them (a profile update evicts that user's entries)."""

from __future__ import annotations

import hashlib
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from redis.asyncio import Redis

from core.observability.tracing import TRACE_HEADERS
from router.execution.batches import EntityBatch

log = logging.getLogger("unityplan.router")


@dataclass(frozen=True, slots=True)
class CachedEntity:
    """One entity answer to keep: where, under which entity, for how long."""

    key: str
    identity: str
    body: bytes
    ttl_seconds: int


class EntityCache:
    """Entity answers in Redis under `<prefix>entity:<type>:<id>:<digest>`, where the digest
    covers the subgraph, the fetched selection and its variables, the whole representation
    and the viewer scope, so one viewer's entities never answer another viewer."""

    def __init__(self, redis: Redis, prefix: str, ttls: Mapping[str, int]) -> None:
        self.redis = redis
        self.prefix = prefix
        self.ttls = dict(ttls)
        self.hits = 0
        self.misses = 0

    def cacheable(self, representation: Mapping[str, Any]) -> bool:
        return representation.get("__typename") in self.ttls

    @staticmethod
    def viewer_scope(headers: Mapping[str, str]) -> str:
        """Everything the caller sent on to subgraphs but the trace context (Authorization
        among it), digested."""
        kept = sorted((k, v) for k, v in headers.items() if k not in TRACE_HEADERS)
        return hashlib.sha256(orjson.dumps(kept)).hexdigest()[:32]

    @staticmethod
    def identity(representation: Mapping[str, Any]) -> str:
        """`<type>:<id>` for entities keyed by `id` (what domain events name), else a digest
        of the representation."""
        typename = str(representation.get("__typename"))
        if "id" in representation:
            return f"{typename}:{representation['id']}"
        rest = orjson.dumps(dict(representation), option=orjson.OPT_SORT_KEYS)
        return f"{typename}:{hashlib.sha256(rest).hexdigest()[:32]}"

    def key(self, identity: str, fetched: bytes, representation: Mapping[str, Any]) -> str:
        digest = hashlib.sha256(fetched)
        digest.update(orjson.dumps(dict(representation), option=orjson.OPT_SORT_KEYS))
        return f"{self.prefix}entity:{identity}:{digest.hexdigest()[:40]}"

    def _index(self, identity: str) -> str:
        return f"{self.prefix}entity-index:{identity}"

    async def lookup(self, keys: list[str]) -> list[dict[str, Any] | None]:
        """The cached entities of `keys` (None where there is none); Redis trouble is a miss."""
        if not keys:
            return []
        try:
            found = await self.redis.mget(keys)
        except Exception as exc:  # the cache is an optimisation, never a failure
            log.warning("entity cache unavailable: %s", exc)
            return [None] * len(keys)
        entities: list[dict[str, Any] | None] = []
        for raw in found:
            entity = orjson.loads(raw) if raw is not None else None
            entities.append(entity if isinstance(entity, dict) else None)
        hits = sum(e is not None for e in entities)
        self.hits += hits
        self.misses += len(keys) - hits
        return entities

    async def store(self, entries: list[CachedEntity]) -> None:
        if not entries:
            return
        try:
            async with self.redis.pipeline(transaction=False) as pipe:
                for entry in entries:
                    pipe.set(entry.key, entry.body, ex=entry.ttl_seconds)
                    # The index lets an event find every entry of the entity; it outlives them.
                    pipe.sadd(self._index(entry.identity), entry.key)
                    pipe.expire(self._index(entry.identity), entry.ttl_seconds, gt=True)
                    pipe.expire(self._index(entry.identity), entry.ttl_seconds, nx=True)
                await pipe.execute()
        except Exception as exc:  # the cache is an optimisation, never a failure
            log.warning("entity cache unavailable: %s", exc)

    async def evict(self, typename: str, entity_id: str) -> int:
        """Forget every cached answer about one entity; how many there were."""
        index = self._index(f"{typename}:{entity_id}")
        keys = await self.redis.smembers(index)
        if keys:
            await self.redis.delete(*keys, index)
        return len(keys)


class CachedEntityFetch:
    """The cache's part in one step's entity fetch to one subgraph: answers what it holds,
    leaves the rest to fetch, and keeps what the fetch brings back."""

    def __init__(self, cache: EntityCache, subgraph: str, headers: Mapping[str, str]) -> None:
        self.cache = cache
        self.subgraph = subgraph
        self.scope = EntityCache.viewer_scope(headers)
        # Per batch still to fetch: (key, identity, ttl) of each representation, None if not
        # cacheable.
        self._pending: dict[int, list[tuple[str, str, int] | None]] = {}
        self._fetched: list[CachedEntity] = []

    async def misses(
        self,
        batches: list[EntityBatch],
        variables: Callable[[EntityBatch], Mapping[str, Any]],
        fill: Callable[[EntityBatch, int, dict[str, Any]], None],
    ) -> list[EntityBatch]:
        """Fill the objects whose entities are cached; the batches of those still to fetch."""
        slots: list[list[tuple[str, str, int] | None]] = []
        keys: list[str] = []
        for batch in batches:
            fetched = orjson.dumps(
                [self.subgraph, batch.fetch.operation, variables(batch), batch.context, self.scope],
                option=orjson.OPT_SORT_KEYS,
            )
            row: list[tuple[str, str, int] | None] = []
            for rep in batch.representations:
                if not self.cache.cacheable(rep):
                    row.append(None)
                    continue
                identity = EntityCache.identity(rep)
                key = self.cache.key(identity, fetched, rep)
                row.append((key, identity, self.cache.ttls[str(rep["__typename"])]))
                keys.append(key)
            slots.append(row)
        found = iter(await self.cache.lookup(keys))
        remaining: list[EntityBatch] = []
        for batch, row in zip(batches, slots, strict=True):
            left = EntityBatch(batch.fetch, batch.path, batch.context)
            pending: list[tuple[str, str, int] | None] = []
            for index, slot in enumerate(row):
                entity = next(found) if slot is not None else None
                if entity is not None:
                    fill(batch, index, entity)
                    continue
                left.representations.append(batch.representations[index])
                left.positions.append(batch.positions[index])
                pending.append(slot)
            if left.representations:
                self._pending[id(left)] = pending
                remaining.append(left)
        return remaining

    def fetched(self, batch: EntityBatch, index: int, entity: dict[str, Any]) -> None:
        """Keep a fetched entity (encoded now: later steps merge more into the same objects)."""
        slots = self._pending.get(id(batch))
        slot = slots[index] if slots is not None and index < len(slots) else None
        if slot is not None:
            key, identity, ttl = slot
            self._fetched.append(CachedEntity(key, identity, orjson.dumps(entity), ttl))

    async def store(self) -> None:
        await self.cache.store(self._fetched)
