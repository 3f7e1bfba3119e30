"""What bounds one planning: how many options it may weigh and for how long, and which
progressive `@override` labels are active."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from router.planning.errors import PlanningError


@dataclass(frozen=True, slots=True)
class PlanningOptions:
    # Options weighed (fields placed, subgraphs and keys compared) before planning gives up.
    max_options: int = 200_000
    # Wall time one planning may take.
    timeout_seconds: float = 2.0
    # `@override(label:)` labels in force: a field overridden under another label is still
    # resolved by the subgraph it was taken from.
    override_labels: frozenset[str] = field(default_factory=frozenset)


class PlanningBudget:
    """Counts the options one planning weighs; raises `PlanningError` past either limit."""

    __slots__ = ("_deadline", "_left", "options")

    def __init__(self, options: PlanningOptions) -> None:
        self.options = options
        self._left = options.max_options
        self._deadline = time.perf_counter() + options.timeout_seconds

    def spend(self, count: int = 1) -> None:
        self._left -= count
        if self._left < 0:
            raise PlanningError(
                f"Query planning weighed more than {self.options.max_options} options "
                "(ROUTER_PLANNING_MAX_OPTIONS)"
            )
        # The clock is read every 64 options: cheap, and a planning cannot run far past it.
        if self._left % 64 == 0 and time.perf_counter() > self._deadline:
            raise PlanningError(
                f"Query planning took longer than {self.options.timeout_seconds:g} s "
                "(ROUTER_PLANNING_TIMEOUT_SECONDS)"
            )
