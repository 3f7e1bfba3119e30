"""The request pipeline of one supergraph: parse, validate, plan (cached), execute, shape."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from graphql import (
    GraphQLError,
    GraphQLSchema,
    GraphQLSyntaxError,
    build_schema,
    parse,
    validate,
)
from graphql.execution.values import get_variable_values
from graphql.language import DocumentNode, OperationDefinitionNode

from router.edge.limits import OperationLimits, check_limits, tokens_over
from router.execution.client import SubgraphClient
from router.execution.entity_cache import EntityCache
from router.execution.executor import PlanRun
from router.execution.introspection import introspect, introspection_document
from router.execution.merge import deep_merge
from router.execution.shaping import Shape, Shaper
from router.execution.telemetry import plan_execution
from router.planning import (
    Condition,
    Fetch,
    Flatten,
    LruCache,
    OperationError,
    PlanningError,
    PlanningOptions,
    PlanNode,
    QueryPlan,
    normalize,
    plan_operation,
)
from router.planning.operation import select_operation
from router.supergraph import Supergraph

# graphql-core's "Did you mean ...?" hints tell a stranger the schema's field names.
_SUGGESTION = re.compile(r" Did you mean [^?]*\?")


class RequestError(Exception):
    """The request cannot be executed (syntax, validation, variables); no subgraph was called."""

    def __init__(self, errors: list[dict[str, Any]], *, validation: bool = True) -> None:
        super().__init__(errors[0]["message"] if errors else "Bad request")
        self.errors = errors
        self.validation = validation


def _formatted(error: GraphQLError, code: str, *, suggestions: bool = True) -> dict[str, Any]:
    found: dict[str, Any] = dict(error.formatted)
    if not suggestions:
        found["message"] = _SUGGESTION.sub("", found["message"])
    extensions = found.get("extensions")
    found["extensions"] = {**(extensions if isinstance(extensions, dict) else {}), "code": code}
    return found


@dataclass(frozen=True, slots=True)
class PreparedOperation:
    kind: str
    root_type: str
    document: DocumentNode
    definition: OperationDefinitionNode
    plan: QueryPlan
    shape: Shape
    introspection: DocumentNode | None
    fetch_count: int = 0


def _fetches(node: PlanNode | None) -> int:
    """Fetch nodes of a plan (shown on its span)."""
    if node is None:
        return 0
    if isinstance(node, Fetch | Flatten):
        return 1
    if isinstance(node, Condition):
        return max(_fetches(node.if_clause), _fetches(node.else_clause))
    return sum(_fetches(child) for child in node.nodes)


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
    ) -> None:
        self.entity_cache = entity_cache
        self.planning = planning or PlanningOptions()
        self.supergraph = supergraph
        self.client = client
        self.limits = limits or OperationLimits()
        self.suggestions = suggestions
        self.schema: GraphQLSchema = build_schema(supergraph.api_sdl)
        self.plans: LruCache[tuple[str, str, str | None], PreparedOperation | RequestError] = (
            LruCache(plan_cache_size)
        )

    def prepare(self, query: str, operation_name: str | None) -> PreparedOperation:
        """The validated, planned operation (cached by supergraph, document and name)."""
        found = self.plans.get_or_build(
            (self.supergraph.hash, query, operation_name),
            lambda: self._prepare(query, operation_name),
        )
        if isinstance(found, RequestError):
            raise found
        return found

    def _prepare(self, query: str, operation_name: str | None) -> PreparedOperation | RequestError:
        try:
            document = parse(query, max_tokens=self.limits.max_tokens)
        except GraphQLSyntaxError as exc:
            if "tokens" in exc.message and "Parsing aborted" in exc.message:
                return RequestError([tokens_over(self.limits).error()])
            return RequestError([_formatted(exc, "GRAPHQL_PARSE_FAILED")])
        # Limits before validation: validating a hostile document is itself the expensive part.
        try:
            exceeded = check_limits(
                document, select_operation(document, operation_name), self.limits
            )
        except OperationError:
            exceeded = None  # validation names what is wrong with the document
        if exceeded is not None:
            return RequestError([exceeded.error()])
        errors = validate(self.schema, document)
        if errors:
            return RequestError(
                [
                    _formatted(e, "GRAPHQL_VALIDATION_FAILED", suggestions=self.suggestions)
                    for e in errors
                ]
            )
        try:
            definition = select_operation(document, operation_name)
            operation = normalize(document, operation_name)
            if operation.kind == "subscription":
                return RequestError(
                    [
                        {
                            "message": "Subscriptions are not supported by this router yet",
                            "extensions": {"code": "OPERATION_NOT_SUPPORTED"},
                        }
                    ]
                )
            plan = plan_operation(self.supergraph, operation, self.planning)
        except OperationError as exc:
            return RequestError([{"message": str(exc), "extensions": {"code": "BAD_REQUEST"}}])
        except PlanningError as exc:
            return RequestError(
                [{"message": str(exc), "extensions": {"code": "QUERY_PLANNING_FAILED"}}],
                validation=False,
            )
        root_type = self.supergraph.root_type(operation.kind) or "Query"
        return PreparedOperation(
            kind=operation.kind,
            root_type=root_type,
            document=document,
            definition=definition,
            plan=plan,
            shape=Shape(self.schema, operation.selections),
            introspection=introspection_document(document, definition),
            fetch_count=_fetches(plan.node),
        )

    def coerce_variables(
        self, prepared: PreparedOperation, inputs: Mapping[str, Any] | None
    ) -> dict[str, Any]:
        coerced = get_variable_values(
            self.schema, prepared.definition.variable_definitions or (), dict(inputs or {})
        )
        if isinstance(coerced, list):
            raise RequestError([_formatted(e, "BAD_USER_INPUT") for e in coerced])
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
