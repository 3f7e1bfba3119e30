"""Running a query plan: fetches in plan order, entity fetches batched per subgraph and step."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Mapping
from typing import Any

from router.edge.uploads import has_uploads, multipart_form
from router.execution.batches import EntityBatch, build_batches
from router.execution.client import SubgraphClient, SubgraphFailure
from router.execution.entity_cache import CachedEntityFetch, EntityCache
from router.execution.response_merge import Path, deep_merge, objects_with_paths, rename_keys
from router.pipeline.outcome import RETRY_AFTER_SECONDS
from router.planning import Condition, Fetch, Flatten, Parallel, PlanNode, QueryPlan, Sequence
from router.planning.cache import LruCache

# Documents that combine several entity fetches to one subgraph into one request.
_COMBINED: LruCache[tuple[str, ...], str] = LruCache(max_size=2048)


# What the router says when a subgraph cannot be reached or does not answer in time: an
# outage, so the client is told when to try again (as subgraphs do with SERVICE_UNAVAILABLE).
SUBGRAPH_OUTAGE_CODES = frozenset({"SUBREQUEST_HTTP_ERROR", "GATEWAY_TIMEOUT"})


def _error(message: str, subgraph: str, code: str, path: list[Any] | None = None) -> dict[str, Any]:
    error: dict[str, Any] = {"message": message}
    if path:
        error["path"] = path
    error["extensions"] = {"code": code, "serviceName": subgraph}
    if code in SUBGRAPH_OUTAGE_CODES:
        error["extensions"]["retryAfter"] = RETRY_AFTER_SECONDS
    return error


def _rerooted(error: Any, subgraph: str, path: list[Any] | None) -> dict[str, Any]:
    if not isinstance(error, dict):
        return _error("Subgraph error", subgraph, "SUBGRAPH_ERROR", path)
    found: dict[str, Any] = {"message": str(error.get("message", "Subgraph error"))}
    if path:
        found["path"] = path
    extensions = error.get("extensions")
    found["extensions"] = {
        **(extensions if isinstance(extensions, dict) else {}),
        "serviceName": subgraph,
    }
    return found


class PlanRun:
    """The state of one request's plan execution: the response tree and the errors so far."""

    def __init__(
        self,
        client: SubgraphClient,
        plan: QueryPlan,
        variables: Mapping[str, Any],
        headers: Mapping[str, str],
        *,
        uploads: bool = False,
        entity_cache: EntityCache | None = None,
    ) -> None:
        self.client = client
        self.entity_cache = entity_cache
        self.plan = plan
        self.variables = variables
        self.headers = headers
        # Whether variables hold files of a multipart request (sent on as multipart).
        self.uploads = uploads
        self.data: dict[str, Any] = {}
        self.errors: list[dict[str, Any]] = []

    async def run(self) -> None:
        if self.plan.node is not None:
            await self.node(self.plan.node)

    async def node(self, node: PlanNode) -> None:
        if isinstance(node, Sequence):
            for child in node.nodes:
                await self.node(child)
        elif isinstance(node, Parallel):
            await self.parallel(node)
        elif isinstance(node, Flatten):
            await self.entity_fetches(node.node.subgraph, [node])
        elif isinstance(node, Fetch):
            await self.root_fetch(node)
        elif isinstance(node, Condition):
            branch = node.if_clause if self.variables.get(node.variable) else node.else_clause
            if branch is not None:
                await self.node(branch)

    async def parallel(self, node: Parallel) -> None:
        by_subgraph: dict[str, list[Flatten]] = {}
        others: list[PlanNode] = []
        for child in node.nodes:
            if isinstance(child, Flatten):
                by_subgraph.setdefault(child.node.subgraph, []).append(child)
            else:
                others.append(child)
        await asyncio.gather(
            *(self.entity_fetches(s, flattens) for s, flattens in by_subgraph.items()),
            *(self.node(child) for child in others),
        )

    def _variables_for(self, fetch: Fetch) -> dict[str, Any]:
        return {
            name: self.variables[name] for name in fetch.variable_usages if name in self.variables
        }

    async def root_fetch(self, fetch: Fetch) -> None:
        payload = {"query": fetch.operation, "variables": self._variables_for(fetch)}
        form = multipart_form(payload) if self.uploads and has_uploads(payload) else None
        try:
            body = await self.client.request(
                fetch.subgraph,
                payload,
                self.headers,
                idempotent=fetch.operation_kind == "query",
                form=form,
            )
        except SubgraphFailure as failure:
            self.errors.append(_error(failure.message, failure.subgraph, failure.code))
            return
        data = body.get("data")
        if isinstance(data, dict):
            rename_keys(data, fetch.output_renames)
            deep_merge(self.data, data)
        for error in body.get("errors") or ():
            path = error.get("path") if isinstance(error, dict) else None
            self.errors.append(
                _rerooted(error, fetch.subgraph, path if isinstance(path, list) else None)
            )

    async def entity_fetches(self, subgraph: str, flattens: list[Flatten]) -> None:
        batches = [
            batch
            for flatten in flattens
            for batch in build_batches(self.data, flatten)
            if batch.representations
        ]
        cached: CachedEntityFetch | None = None
        if self.entity_cache is not None and batches:
            cached = CachedEntityFetch(self.entity_cache, subgraph, self.headers)
            batches = await cached.misses(
                batches, lambda b: self._variables_for(b.fetch), self._fill
            )
        if not batches:
            return
        if len(batches) == 1:
            fetch = batches[0].fetch
            variables = self._variables_for(fetch)
            variables["representations"] = batches[0].representations
            variables.update(batches[0].context)
            payload = {"query": fetch.operation, "variables": variables}
            aliases = ["_entities"]
        else:
            payload, aliases = self._combined(batches)
        try:
            body = await self.client.request(subgraph, payload, self.headers)
        except SubgraphFailure as failure:
            # Rooted at the first object the fetch was for, so clients see where data is missing.
            first = batches[0]
            where = _Paths(self.data).of(first.positions[0][0], first.path)
            path = list(where) if where is not None else None
            self.errors.append(_error(failure.message, failure.subgraph, failure.code, path))
            return
        data = body.get("data")
        for alias, batch in zip(aliases, batches, strict=True):
            entities = data.get(alias) if isinstance(data, dict) else None
            if isinstance(entities, list):
                rename_keys(entities, batch.fetch.output_renames)
                for index, entity in enumerate(entities[: len(batch.positions)]):
                    if isinstance(entity, dict):
                        if cached is not None:
                            cached.fetched(batch, index, entity)
                        self._fill(batch, index, entity)
        errors = body.get("errors")
        if cached is not None and not errors:
            await cached.store()
        if errors:
            paths = _Paths(self.data)
            for error in errors:
                path = _entity_error_path(error, aliases, batches, paths)
                self.errors.append(_rerooted(error, subgraph, path))

    @staticmethod
    def _fill(batch: EntityBatch, index: int, entity: dict[str, Any]) -> None:
        """Merge one entity into every response object its representation stands for."""
        for obj in batch.positions[index]:
            if batch.fetch.refines_typename and "__typename" in entity:
                obj["__typename"] = entity["__typename"]
            deep_merge(obj, entity)

    def _combined(self, batches: list[EntityBatch]) -> tuple[dict[str, Any], list[str]]:
        fetches = [b.fetch for b in batches]
        text = _COMBINED.get_or_build(
            tuple(f.operation for f in fetches), lambda: self._combined_document(fetches)
        )
        variables: dict[str, Any] = {}
        for fetch in fetches:
            variables.update(self._variables_for(fetch))
        for index, batch in enumerate(batches):
            variables[f"representations{index}"] = batch.representations
            for name, value in batch.context.items():
                variables[f"{name}_{index}"] = value
        return {"query": text, "variables": variables}, [f"_{i}" for i in range(len(batches))]

    def _combined_document(self, fetches: list[Fetch]) -> str:
        usages = sorted({name for fetch in fetches for name in fetch.variable_usages})
        definitions = [f"$representations{i}: [_Any!]!" for i in range(len(fetches))]
        definitions += [self.plan.variable_definitions[name] for name in usages]
        fields = []
        for i, fetch in enumerate(fetches):
            selection = fetch.entity_selection
            # Each batch of a `@fromContext` fetch sends its own context values.
            for use in fetch.context_uses:
                definitions.append(f"${use.variable}_{i}: {use.type}")
                selection = re.sub(rf"\${use.variable}\b", f"${use.variable}_{i}", selection)
            fields.append(f"_{i}: _entities(representations: $representations{i}) {selection}")
        return f"query({', '.join(definitions)}) {{ {' '.join(fields)} }}"


class _Paths:
    """Response paths of the objects at a plan path, computed only when an error needs one."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.data = data
        self.by_plan_path: dict[tuple[str, ...], dict[int, Path]] = {}

    def of(self, obj: dict[str, Any], plan_path: tuple[str, ...]) -> Path | None:
        found = self.by_plan_path.get(plan_path)
        if found is None:
            found = self.by_plan_path[plan_path] = {
                id(o): p for o, p in objects_with_paths(self.data, plan_path)
            }
        return found.get(id(obj))


def _entity_error_path(
    error: Any, aliases: list[str], batches: list[EntityBatch], paths: _Paths
) -> list[Any] | None:
    """The client path of an error raised inside `_entities` (never the internal path)."""
    path = error.get("path") if isinstance(error, dict) else None
    if not isinstance(path, list) or len(path) < 2 or path[0] not in aliases:
        return None
    batch = batches[aliases.index(path[0])]
    index = path[1]
    if not isinstance(index, int) or not 0 <= index < len(batch.positions):
        return None
    where = paths.of(batch.positions[index][0], batch.path)
    return [*where, *path[2:]] if where is not None else None
