"""The planner's one error: an operation that cannot be planned against the supergraph."""


class PlanningError(Exception):
    """The operation cannot be planned against this supergraph."""
