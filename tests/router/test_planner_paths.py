"""The planner's search over the query graph's paths: conditions (`@requires`, `@fromContext`)
and `@interfaceObject` jumps are costed as the fetches they take, and a field takes the path
whose fetches (then sequential steps) are fewest."""

from __future__ import annotations

from graphql import parse

from router.planning import PlanningOptions, normalize
from router.planning.capabilities import Capabilities
from router.planning.cost import Cost, CostModel
from router.planning.operation import Field, Selection
from router.planning.options import PlanningBudget
from router.planning.planner import query_graph
from router.supergraph import Supergraph, parse_supergraph
from tests.router.supergraphs import CONTEXT
from tests.router.test_planner_federation import (
    DOCUMENTS,
    Subgraphs,
    execute,
    plan_text,
    supergraph,
)


def costs(graph: Supergraph) -> CostModel:
    budget = PlanningBudget(PlanningOptions())
    return CostModel(Capabilities(graph, query_graph(graph, frozenset()), budget))


def below(query: str, *names: str) -> tuple[Selection, ...]:
    """The selections under the root field path `names` of `query`."""
    selections = normalize(parse(query), None).selections
    for name in names:
        field = next(s for s in selections if isinstance(s, Field) and s.name == name)
        selections = field.selections
    return selections


# `price` is answered by `pricing` once it has the list price, which only `stock` has, and by
# `deals` outright; `pricing` comes first in the subgraph order.
PRICES = supergraph(
    "catalog pricing deals stock",
    """
type Query @join__type(graph: CATALOG) @join__type(graph: PRICING) @join__type(graph: DEALS)
  @join__type(graph: STOCK) {
  items: [Item!]! @join__field(graph: CATALOG)
}
type Item @join__type(graph: CATALOG, key: "id") @join__type(graph: PRICING, key: "id")
  @join__type(graph: DEALS, key: "id") @join__type(graph: STOCK, key: "id") {
  id: ID!
  name: String @join__field(graph: CATALOG)
  listPrice: Int @join__field(graph: STOCK) @join__field(graph: PRICING, external: true)
  price: Int @join__field(graph: PRICING, requires: "listPrice") @join__field(graph: DEALS)
}
""",
)


def test_a_field_under_requires_costs_the_fetch_of_its_conditions_and_one_back() -> None:
    model = costs(PRICES)
    price = below("{ items { price } }", "items")
    # From `pricing` itself: `listPrice` from `stock`, then `pricing` again with it.
    assert model.cost("Item", price, "pricing", None) == Cost(2, 2)
    # From `catalog`: one jump to `deals` is the cheapest way.
    assert model.cost("Item", price, "catalog", None) == Cost(1, 1)


def test_the_jump_whose_requires_take_no_extra_fetch_is_taken() -> None:
    assert (
        plan_text(PRICES, "{ items { name price } }")
        == """\
QueryPlan {
  Sequence {
    Fetch(service: "catalog") {
      {
        items {
          name
          __typename
          id
        }
      }
    },
    Flatten(path: "items.@") {
      Fetch(service: "deals") {
        {
          ... on Item {
            __typename
            id
          }
        } =>
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Item {
              price
            }
          }
        }
      }
    }
  }
}"""
    )


async def test_the_cheaper_path_for_a_required_field_answers() -> None:
    data: Subgraphs = {
        "catalog": ({"Query.items": lambda *_: [{"id": "i1", "name": "Lamp"}]}, {}),
        "deals": ({}, {"Item": lambda rep: {"id": rep["id"], "price": 30}}),
        "pricing": ({}, {}),
        "stock": ({}, {}),
    }
    assert await execute(PRICES, data, "{ items { name price } }") == {
        "data": {"items": [{"name": "Lamp", "price": 30}]}
    }


def test_a_field_taking_a_context_value_costs_one_entity_fetch_after_its_ancestor() -> None:
    model = costs(parse_supergraph(CONTEXT))
    price = below("{ shelves { items { price } } }", "shelves", "items")
    assert model.cost("Item", price, "prices", None) == Cost(1, 1)
    assert model.cost("Item", price, "shelf", None) == Cost(1, 1)


def test_interface_object_jumps_and_concrete_types_are_costed() -> None:
    model = costs(DOCUMENTS)
    # A Memo's `slug` is on the `Document` interface object of `search` (its `@requires`
    # `title` is in `files` already): one jump.
    assert model.cost("Memo", below("{ files { slug } }", "files"), "files", None) == Cost(1, 1)
    # `search` knows only the interface: the object's type takes one fetch from `files`.
    typename = below("{ files { __typename id } }", "files")
    assert model.cost("Document", typename, "search", None) == Cost(1, 1)
    assert model.cost("Document", below("{ files { id } }", "files"), "search", None) == Cost(0, 0)
