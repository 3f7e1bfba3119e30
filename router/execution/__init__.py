"""Plan execution: subgraph HTTP, entity batching, result merging and response shaping."""

from router.execution.client import SubgraphClient, SubgraphFailure
from router.execution.gateway import Gateway

__all__ = ["Gateway", "SubgraphClient", "SubgraphFailure"]
