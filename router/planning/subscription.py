"""Subscription plans: the root field goes to its owning subgraph as one long-lived upstream
subscription; the rest of the selection is a query plan run again for every event."""

from __future__ import annotations

from dataclasses import dataclass

from router.planning.errors import PlanningError
from router.planning.nodes import Fetch, PlanNode, QueryPlan, Sequence
from router.planning.plan_printer import print_plan


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
