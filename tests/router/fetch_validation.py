"""Every fetch of a plan checked against the schema of the subgraph it is sent to.

`tests/router/conftest.py` applies this to every plan the router tests build, so a planner
change that sends a subgraph a document it would refuse fails the test that planned it.
"""

from __future__ import annotations

from functools import lru_cache

from graphql import GraphQLSchema, build_schema, parse, validate

from router.planning import Condition, Fetch, Flatten, Parallel, PlanNode, QueryPlan, Sequence
from router.supergraph import Supergraph
from tests.router.subgraph_kit import subgraph_sdl


@lru_cache(maxsize=64)
def _api_schema(api_sdl: str) -> GraphQLSchema:
    return build_schema(api_sdl)


_SCHEMAS: dict[tuple[str, str], GraphQLSchema] = {}


def subgraph_schema(supergraph: Supergraph, name: str) -> GraphQLSchema:
    """The schema subgraph `name` serves, as the supergraph describes it."""
    key = (supergraph.hash, name)
    if key not in _SCHEMAS:
        sdl = subgraph_sdl(supergraph, name, _api_schema(supergraph.api_sdl))
        # Checked per document only: the slice may leave an interface field to another subgraph.
        _SCHEMAS[key] = build_schema(sdl, assume_valid=True)
    return _SCHEMAS[key]


def fetches(node: PlanNode | None) -> list[Fetch]:
    if node is None:
        return []
    if isinstance(node, Fetch):
        return [node]
    if isinstance(node, Flatten):
        return [node.node]
    if isinstance(node, Sequence | Parallel):
        return [fetch for child in node.nodes for fetch in fetches(child)]
    assert isinstance(node, Condition)
    return fetches(node.if_clause) + fetches(node.else_clause)


def invalid_fetches(supergraph: Supergraph, plan: QueryPlan) -> list[str]:
    """A description of each fetch its subgraph would refuse, with the subgraph's reasons."""
    found = []
    for fetch in fetches(plan.node):
        if fetch.subgraph not in supergraph.subgraphs:
            continue
        schema = subgraph_schema(supergraph, fetch.subgraph)
        errors = validate(schema, parse(fetch.operation))
        if errors:
            reasons = "; ".join(error.message for error in errors)
            found.append(f"{fetch.subgraph}: {fetch.operation}\n  {reasons}")
    return found
