"""The document stages of the pipeline, in order: parse once under the token limit, measure
the limits, validate, plan. Pure (supergraph, schema and text in; a prepared operation or a
`Refused` out), so the result is cached per supergraph and document and a document is parsed
at most once, whatever door it came through."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from graphql import GraphQLError, GraphQLSchema, GraphQLSyntaxError, parse, validate
from graphql.language import DocumentNode, OperationDefinitionNode

from router.edge.limits import (
    OperationLimits,
    check_limits,
    directives_over,
    tokens_over,
    too_many_tokens,
)
from router.execution.introspection import introspection_document
from router.execution.shaping import Shape
from router.pipeline.outcome import Refused, Stage
from router.planning import (
    Condition,
    Fetch,
    Flatten,
    OperationError,
    PlanningError,
    PlanningOptions,
    PlanNode,
    QueryPlan,
    normalize,
    plan_operation,
)
from router.planning.defer import DeferredFragment, has_defer, split_deferred
from router.planning.operation import select_operation
from router.planning.planner import plan_subscription
from router.planning.subscription import SubscriptionPlan, split_plan
from router.supergraph import Supergraph

# graphql-core's "Did you mean ...?" hints tell a stranger the schema's field names.
_SUGGESTION = re.compile(r" Did you mean [^?]*\?")


@dataclass(frozen=True, slots=True)
class DeferredPart:
    """What a `@defer` query answers first (its own plan) and the fragments that follow."""

    primary: PreparedOperation
    fragments: tuple[DeferredFragment, ...]


@dataclass(frozen=True, slots=True)
class PreparedOperation:
    """A validated, planned operation: everything execution needs but the variables."""

    kind: str  # query, mutation or subscription
    root_type: str
    document: DocumentNode
    definition: OperationDefinitionNode
    plan: QueryPlan
    shape: Shape
    introspection: DocumentNode | None
    fetch_count: int = 0
    # Subscriptions: the upstream subscription and what runs for each of its events.
    subscription: SubscriptionPlan | None = None
    # `@defer` queries that can answer a primary part first.
    deferred: DeferredPart | None = None


@dataclass(frozen=True, slots=True)
class DocumentRules:
    """The rules the document stages apply: the edge's limits, whether validation errors may
    suggest field names, and the planner's budget and override labels."""

    limits: OperationLimits
    suggestions: bool
    planning: PlanningOptions = field(default_factory=PlanningOptions)


def _coded(error: GraphQLError, code: str, *, suggestions: bool = True) -> dict[str, object]:
    found: dict[str, object] = dict(error.formatted)
    if not suggestions:
        found["message"] = _SUGGESTION.sub("", str(found["message"]))
    extensions = found.get("extensions")
    found["extensions"] = {**(extensions if isinstance(extensions, dict) else {}), "code": code}
    return found


def _fetches(node: PlanNode | None) -> int:
    """Fetch nodes of a plan (shown on its span)."""
    if node is None:
        return 0
    if isinstance(node, Fetch | Flatten):
        return 1
    if isinstance(node, Condition):
        return max(_fetches(node.if_clause), _fetches(node.else_clause))
    return sum(_fetches(child) for child in node.nodes)


def parse_document(query: str, limits: OperationLimits) -> DocumentNode:
    """The parsed document; the parser stops at the token limit, so a huge document costs no
    more than a small one, and a document far over it is refused before parsing starts.
    `Refused` (PARSE or LIMIT)."""
    if too_many_tokens(query, limits):
        raise Refused(Stage.LIMIT, [tokens_over(limits).error()])
    try:
        return parse(query, max_tokens=limits.max_tokens)
    except GraphQLSyntaxError as exc:
        if "tokens" in exc.message and "Parsing aborted" in exc.message:
            raise Refused(Stage.LIMIT, [tokens_over(limits).error()]) from None
        raise Refused(Stage.PARSE, [_coded(exc, "GRAPHQL_PARSE_FAILED")]) from None


def prepare_document(
    supergraph: Supergraph,
    schema: GraphQLSchema,
    rules: DocumentRules,
    query: str,
    operation_name: str | None,
    defer_switches: Mapping[str, bool] | None = None,
) -> PreparedOperation:
    """Parse, measure, validate and plan `query`; `Refused` from the stage that stopped it.
    `defer_switches` (boolean variables) decide `@defer(if: $var)`."""
    document = parse_document(query, rules.limits)
    try:
        kind: str | None = select_operation(document, operation_name).operation.value
    except OperationError:
        kind = None  # validation names what is wrong with the document
    split = (
        split_deferred(document, operation_name, defer_switches or {}) if has_defer(query) else None
    )
    complete = split.complete if split is not None else document
    # Limits before validation: validating a hostile document is itself the expensive part.
    exceeded = directives_over(document, rules.limits)
    if exceeded is None and kind is not None:
        exceeded = check_limits(complete, select_operation(complete, operation_name), rules.limits)
    if exceeded is not None:
        raise Refused(Stage.LIMIT, [exceeded.error()], operation_kind=kind)
    prepared = _validated_plan(supergraph, schema, rules, complete, operation_name, kind)
    if split is None or not split.deferred or prepared.kind != "query":
        return prepared
    try:
        primary = _validated_plan(supergraph, schema, rules, split.primary, operation_name, kind)
    except Refused:
        return prepared  # the complete result is answered at once, which `@defer` allows
    return _with_deferred(prepared, DeferredPart(primary, split.deferred))


def _with_deferred(prepared: PreparedOperation, deferred: DeferredPart) -> PreparedOperation:
    return PreparedOperation(
        kind=prepared.kind,
        root_type=prepared.root_type,
        document=prepared.document,
        definition=prepared.definition,
        plan=prepared.plan,
        shape=prepared.shape,
        introspection=prepared.introspection,
        fetch_count=prepared.fetch_count,
        subscription=prepared.subscription,
        deferred=deferred,
    )


def _validated_plan(
    supergraph: Supergraph,
    schema: GraphQLSchema,
    rules: DocumentRules,
    document: DocumentNode,
    operation_name: str | None,
    kind: str | None,
) -> PreparedOperation:
    errors = validate(schema, document)
    if errors:
        raise Refused(
            Stage.VALIDATION,
            [_coded(e, "GRAPHQL_VALIDATION_FAILED", suggestions=rules.suggestions) for e in errors],
            operation_kind=kind,
        )
    try:
        definition = select_operation(document, operation_name)
        operation = normalize(document, operation_name)
    except OperationError as exc:
        raise Refused.of(Stage.REQUEST, str(exc), "BAD_REQUEST", operation_kind=kind) from None
    subscription: SubscriptionPlan | None = None
    try:
        if operation.kind == "subscription":
            plan = plan_subscription(supergraph, operation, rules.planning)
            subscription = split_plan(plan)
        else:
            plan = plan_operation(supergraph, operation, rules.planning)
    except PlanningError as exc:
        raise Refused.of(
            Stage.PLANNING, str(exc), "QUERY_PLANNING_FAILED", operation_kind=kind
        ) from None
    return PreparedOperation(
        kind=operation.kind,
        root_type=supergraph.root_type(operation.kind) or _DEFAULT_ROOTS[operation.kind],
        document=document,
        definition=definition,
        plan=plan,
        shape=Shape(schema, operation.selections),
        introspection=introspection_document(document, definition),
        fetch_count=_fetches(plan.node),
        subscription=subscription,
    )


_DEFAULT_ROOTS = {"query": "Query", "mutation": "Mutation", "subscription": "Subscription"}
