"""Query planning: a pure function from (supergraph, operation) to a printable plan tree."""

from router.planning.cache import LruCache
from router.planning.errors import PlanningError
from router.planning.nodes import Condition, Fetch, Flatten, Parallel, PlanNode, QueryPlan, Sequence
from router.planning.operation import NormalizedOperation, OperationError, normalize
from router.planning.options import PlanningOptions
from router.planning.plan_printer import print_plan
from router.planning.planner import plan_operation

__all__ = [
    "Condition",
    "Fetch",
    "Flatten",
    "LruCache",
    "NormalizedOperation",
    "OperationError",
    "Parallel",
    "PlanNode",
    "PlanningError",
    "PlanningOptions",
    "QueryPlan",
    "Sequence",
    "normalize",
    "plan_operation",
    "print_plan",
]
