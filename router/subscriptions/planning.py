"""Subscription plans: the root field goes to its owning subgraph as one long-lived upstream
subscription; the rest of the selection is a query plan run again for every event."""

from __future__ import annotations

from dataclasses import dataclass

from graphql import GraphQLError, GraphQLSchema, GraphQLSyntaxError, parse, validate
from graphql.language import DocumentNode, OperationDefinitionNode

from router.edge.limits import OperationLimits, check_limits, tokens_over
from router.execution.shaping import Shape
from router.planning import (
    Fetch,
    OperationError,
    PlanningError,
    PlanNode,
    QueryPlan,
    Sequence,
    normalize,
    print_plan,
)
from router.planning.operation import select_operation
from router.planning.planner import plan_subscription
from router.supergraph import Supergraph


class SubscriptionRequestError(Exception):
    """The subscription cannot start (syntax, validation, planning); no subgraph was called."""

    def __init__(self, errors: list[dict[str, object]]) -> None:
        super().__init__(str(errors[0].get("message")) if errors else "Bad request")
        self.errors = errors


@dataclass(frozen=True, slots=True)
class SubscriptionPlan:
    """`primary` is the upstream subscription; `per_event` fills in what other subgraphs own."""

    primary: Fetch
    per_event: QueryPlan | None

    def print(self) -> str:
        primary = print_plan(QueryPlan("subscription", self.primary)).removeprefix("QueryPlan ")
        text = "Subscription {\n  Primary: " + primary.replace("\n", "\n  ")
        if self.per_event is not None:
            rest = print_plan(self.per_event).removeprefix("QueryPlan ")
            text += ",\n  Rest: " + rest.replace("\n", "\n  ")
        return text + "\n}"


@dataclass(frozen=True, slots=True)
class PreparedSubscription:
    document: DocumentNode
    definition: OperationDefinitionNode
    root_type: str
    plan: SubscriptionPlan
    shape: Shape


def split_plan(plan: QueryPlan) -> SubscriptionPlan:
    """The subscription's first fetch and the steps after it (entity fetches per event)."""
    node = plan.node
    rest: tuple[PlanNode, ...] = ()
    if isinstance(node, Sequence):
        rest = node.nodes[1:]
        node = node.nodes[0]
    if not isinstance(node, Fetch) or node.is_entity_fetch:
        raise PlanningError("A subscription must start with one fetch of its root field")
    per_event: PlanNode | None = None
    if len(rest) == 1:
        per_event = rest[0]
    elif rest:
        per_event = Sequence(rest)
    return SubscriptionPlan(
        primary=node,
        per_event=QueryPlan("query", per_event, plan.variable_definitions) if per_event else None,
    )


def _coded(error: GraphQLError, code: str) -> dict[str, object]:
    found = dict(error.formatted)
    found["extensions"] = {"code": code}
    return found


def prepare_subscription(
    supergraph: Supergraph,
    schema: GraphQLSchema,
    query: str,
    operation_name: str | None,
    limits: OperationLimits | None = None,
) -> PreparedSubscription:
    """Parse, check the edge's operation limits, validate and plan a subscription;
    `SubscriptionRequestError` when it cannot run."""
    limits = limits or OperationLimits()
    try:
        document = parse(query, max_tokens=limits.max_tokens)
    except GraphQLSyntaxError as exc:
        if "tokens" in exc.message and "Parsing aborted" in exc.message:
            raise SubscriptionRequestError([tokens_over(limits).error()]) from None
        raise SubscriptionRequestError([_coded(exc, "GRAPHQL_PARSE_FAILED")]) from None
    try:
        exceeded = check_limits(document, select_operation(document, operation_name), limits)
    except OperationError:
        exceeded = None  # validation names what is wrong with the document
    if exceeded is not None:
        raise SubscriptionRequestError([exceeded.error()])
    errors = validate(schema, document)
    if errors:
        raise SubscriptionRequestError([_coded(e, "GRAPHQL_VALIDATION_FAILED") for e in errors])
    try:
        definition = select_operation(document, operation_name)
        operation = normalize(document, operation_name)
        if operation.kind != "subscription":
            raise OperationError("Only subscription operations may be sent here")
        plan = split_plan(plan_subscription(supergraph, operation))
    except OperationError as exc:
        raise SubscriptionRequestError(
            [{"message": str(exc), "extensions": {"code": "BAD_REQUEST"}}]
        ) from None
    except PlanningError as exc:
        raise SubscriptionRequestError(
            [{"message": str(exc), "extensions": {"code": "QUERY_PLANNING_FAILED"}}]
        ) from None
    return PreparedSubscription(
        document=document,
        definition=definition,
        root_type=supergraph.root_type("subscription") or "Subscription",
        plan=plan,
        shape=Shape(schema, operation.selections),
    )
