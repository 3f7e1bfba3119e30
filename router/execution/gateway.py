"""Everything needed to answer requests for one supergraph: its API schema, the cache of
prepared documents, variable coercion and plan execution. Swapped whole on reload."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

from graphql import GraphQLSchema, build_schema
from graphql.execution.values import get_variable_values

from router.edge.limits import OperationLimits
from router.execution.client import SubgraphClient
from router.execution.entity_cache import EntityCache
from router.execution.executor import PlanRun
from router.execution.fetch_telemetry import plan_execution
from router.execution.introspection import introspect
from router.execution.response_merge import deep_merge
from router.execution.shaping import Shaper
from router.pipeline.document import DocumentRules, PreparedOperation, prepare_document
from router.pipeline.outcome import Refused, Stage
from router.pipeline.override_labels import OverrideLabels
from router.planning import LruCache, PlanningOptions
from router.planning.planner import query_graph
from router.supergraph import Supergraph

PreparedKey = tuple[str, str, str | None, tuple[tuple[str, bool], ...], frozenset[str]]


class Gateway:
    """Everything needed to answer requests for one supergraph; swapped whole on reload."""

    def __init__(
        self,
        supergraph: Supergraph,
        client: SubgraphClient,
        plan_cache_size: int = 1000,
        *,
        limits: OperationLimits | None = None,
        suggestions: bool = True,
        entity_cache: EntityCache | None = None,
        planning: PlanningOptions | None = None,
        draw: Callable[[], float] | None = None,
    ) -> None:
        self.entity_cache = entity_cache
        self.supergraph = supergraph
        self.client = client
        self.limits = limits or OperationLimits()
        self.rules = DocumentRules(self.limits, suggestions, planning or PlanningOptions())
        self.schema: GraphQLSchema = build_schema(supergraph.api_sdl)
        self.plans: LruCache[PreparedKey, PreparedOperation | Refused] = LruCache(plan_cache_size)
        # Built with the supergraph rather than by the first request's planning.
        query_graph(supergraph, self.rules.planning.override_labels)
        # `draw` (a number in [0, 1) per sampled label) is for tests that need a fixed sequence.
        self.override_labels = OverrideLabels(
            supergraph, self.rules.planning.override_labels, draw or random.random
        )

    def prepare(
        self,
        query: str,
        operation_name: str | None,
        defer_switches: tuple[tuple[str, bool], ...] = (),
    ) -> PreparedOperation:
        """The parsed, measured, validated and planned operation, cached by supergraph,
        document and operation name (and, for `@defer` documents, the boolean variables that
        may switch it), and by the progressive override labels drawn for this request;
        `Refused` when it cannot run."""
        labels = self.override_labels.for_request()
        found = self.plans.get_or_build(
            (self.supergraph.hash, query, operation_name, defer_switches, labels),
            lambda: self._prepare(query, operation_name, dict(defer_switches), labels),
        )
        if isinstance(found, Refused):
            raise found
        return found

    def _prepare(
        self,
        query: str,
        operation_name: str | None,
        switches: Mapping[str, bool],
        labels: frozenset[str],
    ) -> PreparedOperation | Refused:
        rules = self.rules
        if labels != rules.planning.override_labels:
            rules = replace(rules, planning=replace(rules.planning, override_labels=labels))
        try:
            return prepare_document(
                self.supergraph, self.schema, rules, query, operation_name, switches
            )
        except Refused as refused:
            return refused

    def coerce_variables(
        self, prepared: PreparedOperation, inputs: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        """The operation's variables coerced by the API schema; `Refused` (VARIABLES)."""
        coerced = get_variable_values(
            self.schema, prepared.definition.variable_definitions or (), dict(inputs or {})
        )
        if isinstance(coerced, list):
            errors: list[dict[str, Any]] = [
                {**e.formatted, "extensions": {"code": "BAD_USER_INPUT"}} for e in coerced
            ]
            raise Refused(Stage.VARIABLES, errors, operation_kind=prepared.kind)
        # graphql-core 3.3 returns the values with their sources; 3.2 returns the dict itself.
        values: dict[str, Any] = getattr(coerced, "coerced", coerced)  # type: ignore[arg-type]
        return dict(values)

    async def execute(
        self,
        prepared: PreparedOperation,
        variables: dict[str, Any],
        headers: Mapping[str, str],
        *,
        uploads: bool = False,
    ) -> dict[str, Any]:
        """Run the plan and shape the response (`data`, and `errors` when there are any)."""
        run = PlanRun(
            self.client,
            prepared.plan,
            variables,
            headers,
            uploads=uploads,
            entity_cache=self.entity_cache,
        )
        name = prepared.definition.name.value if prepared.definition.name else None
        with plan_execution(prepared.kind, name, prepared.fetch_count):
            await run.run()
        if prepared.introspection is not None:
            data, errors = introspect(self.schema, prepared.introspection, variables)
            deep_merge(run.data, data)
            run.errors.extend(errors)
        shaper = Shaper(self.schema, variables, run.errors)
        response: dict[str, Any] = {
            "data": shaper.root(prepared.shape, run.data, prepared.root_type)
        }
        if run.errors:
            response["errors"] = run.errors
        return response
