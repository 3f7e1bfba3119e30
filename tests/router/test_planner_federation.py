"""Federation cases a planner gets wrong when it plans by type alone: per failure class, the
printed plan and its execution against small real subgraphs (schemas of our own)."""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from contextlib import ExitStack
from typing import Any

import pytest
from graphql import parse

from router.execution.client import SubgraphClient
from router.execution.gateway import Gateway
from router.pipeline.outcome import Refused
from router.pipeline.override_labels import OverrideLabels
from router.planning import PlanningError, PlanningOptions, normalize, plan_operation, print_plan
from router.supergraph import Supergraph, parse_supergraph
from tests.router.subgraph_kit import ReferenceResolver, Resolver, make_subgraph, serve
from tests.router.supergraphs import FIXTURES, JOIN_HEADER


def supergraph(graphs: str, types: str) -> Supergraph:
    names = [name.strip() for name in graphs.split()]
    enum = "\n".join(
        f'  {name.upper()} @join__graph(name: "{name}", url: "http://{name}/graphql")'
        for name in names
    )
    header = JOIN_HEADER.replace("  mutation: Mutation\n", "")
    return parse_supergraph(f"{header}\nenum join__Graph {{\n{enum}\n}}\n{types}")


def plan_text(graph: Supergraph, query: str) -> str:
    return print_plan(plan_operation(graph, normalize(parse(query), None)))


Subgraphs = Mapping[str, tuple[dict[str, Resolver], dict[str, ReferenceResolver]]]


async def execute(
    graph: Supergraph,
    subgraphs: Subgraphs,
    query: str,
    options: PlanningOptions | None = None,
    draw: Callable[[], float] | None = None,
) -> dict[str, Any]:
    served = {
        name: make_subgraph(graph, name, resolvers, references)
        for name, (resolvers, references) in subgraphs.items()
    }
    with ExitStack() as stack:
        urls = {n: stack.enter_context(serve(s.app)) + "/graphql" for n, s in served.items()}
        client = SubgraphClient(urls)
        try:
            gateway = Gateway(graph, client, planning=options, draw=draw)
            try:
                prepared = gateway.prepare(query, None)
            except Refused as refused:
                return {"errors": refused.errors}
            return await gateway.execute(prepared, gateway.coerce_variables(prepared, {}), {})
        finally:
            await client.aclose()


# -- 1. fetches valid for the subgraph receiving them ---------------------------------------

# In `music`, a Track's code is never null but an Album's may be: selected side by side, the
# two `code` fields would not merge, so one is aliased and renamed back in the answer.
LISTINGS = supergraph(
    "music shop",
    """
type Query @join__type(graph: MUSIC) @join__type(graph: SHOP) {
  listings: [Listing!]! @join__field(graph: MUSIC)
  featured: Listing @join__field(graph: MUSIC, type: "Track") @join__field(graph: SHOP, type: "Listing")
  stock: [Track!]! @join__field(graph: SHOP)
}
union Listing @join__type(graph: MUSIC) @join__type(graph: SHOP)
  @join__unionMember(graph: MUSIC, member: "Track") @join__unionMember(graph: MUSIC, member: "Album")
  @join__unionMember(graph: SHOP, member: "Track")
  = Track | Album
type Track @join__type(graph: MUSIC, key: "code") @join__type(graph: SHOP, key: "code") {
  code: ID @join__field(graph: MUSIC, type: "ID!") @join__field(graph: SHOP, type: "ID")
  title: String @join__field(graph: MUSIC)
  price: Int @join__field(graph: SHOP)
}
type Album @join__type(graph: MUSIC) {
  code: ID
  title: String
}
""",
)

TRACKS = {"t1": {"code": "t1", "title": "Blue"}}
LISTING_DATA: Subgraphs = {
    "music": (
        {
            "Query.listings": lambda *_: [
                {"__typename": "Track", **TRACKS["t1"]},
                {"__typename": "Album", "code": None, "title": "Kind of"},
            ],
            "Query.featured": lambda *_: TRACKS["t1"],
        },
        {"Track": lambda rep: TRACKS.get(rep["code"])},
    ),
    "shop": (
        {
            "Query.stock": lambda *_: [{"code": "t1"}],
            "Query.featured": lambda *_: {"__typename": "Track", "code": "t1"},
        },
        {"Track": lambda rep: {"code": rep["code"], "price": 9}},
    ),
}


def test_fields_of_one_name_and_different_types_are_aliased_apart() -> None:
    query = "{ listings { ... on Track { code title } ... on Album { code title } } }"
    assert (
        plan_text(LISTINGS, query)
        == """\
QueryPlan {
  Fetch(service: "music") {
    {
      listings {
        __typename
        ... on Track {
          code
          title
        }
        ... on Album {
          code__alias_0: code
          title
        }
      }
    }
  }
}"""
    )


async def test_aliased_fields_answer_under_the_client_s_names() -> None:
    query = "{ listings { ... on Track { code price } ... on Album { code title } } }"
    assert await execute(LISTINGS, LISTING_DATA, query) == {
        "data": {"listings": [{"code": "t1", "price": 9}, {"code": None, "title": "Kind of"}]}
    }


def test_a_field_narrower_in_its_subgraph_is_planned_with_that_type() -> None:
    # `featured` is a Track in music: an Album fragment would never be valid there.
    query = "{ featured { __typename ... on Album { title } ... on Track { title } } }"
    assert (
        plan_text(LISTINGS, query)
        == """\
QueryPlan {
  Fetch(service: "music") {
    {
      featured {
        __typename
        title
      }
    }
  }
}"""
    )


async def test_typename_only_selection_sends_typename() -> None:
    assert await execute(
        LISTINGS, LISTING_DATA, "{ stock { __typename } featured { __typename } }"
    ) == {"data": {"stock": [{"__typename": "Track"}], "featured": {"__typename": "Track"}}}


# -- 3. @requires ---------------------------------------------------------------------------

# `tax` needs the price in euros, `fee` the price in dollars: two representations, two fetches.
PRICING = supergraph(
    "catalog pricing",
    """
type Query @join__type(graph: CATALOG) @join__type(graph: PRICING) {
  items: [Item!]! @join__field(graph: CATALOG)
}
type Item @join__type(graph: CATALOG, key: "id") @join__type(graph: PRICING, key: "id") {
  id: ID!
  price(currency: String!): Int @join__field(graph: CATALOG) @join__field(graph: PRICING, external: true)
  seller: Seller @join__field(graph: CATALOG) @join__field(graph: PRICING, external: true)
  tax: Int @join__field(graph: PRICING, requires: "price(currency: \\"EUR\\")")
  fee: Int @join__field(graph: PRICING, requires: "price(currency: \\"USD\\")")
  badge: String @join__field(graph: PRICING, requires: "seller { ... on Party { name } }")
}
interface Party @join__type(graph: CATALOG) @join__type(graph: PRICING) {
  name: String
}
type Seller implements Party @join__implements(graph: CATALOG, interface: "Party")
  @join__implements(graph: PRICING, interface: "Party")
  @join__type(graph: CATALOG) @join__type(graph: PRICING) {
  name: String @join__field(graph: CATALOG) @join__field(graph: PRICING, external: true)
}
""",
)

RATES = {"EUR": 10, "USD": 12}
PRICING_DATA: Subgraphs = {
    "catalog": (
        {
            "Query.items": lambda *_: [{"id": "i1", "seller": {"name": "Ana"}}],
            "Item.price": lambda _item, _info, currency: RATES[currency],
        },
        {},
    ),
    "pricing": (
        {},
        {
            "Item": lambda rep: {
                "id": rep["id"],
                "tax": rep["price"] // 2 if "price" in rep else None,
                "fee": rep["price"] * 2 if "price" in rep else None,
                "badge": f"by {rep['seller']['name']}" if "seller" in rep else None,
            }
        },
    ),
}


def test_requirements_of_one_field_with_other_arguments_go_in_separate_fetches() -> None:
    plan = plan_text(PRICING, "{ items { tax fee } }")
    assert plan.count('Fetch(service: "pricing")') == 2
    assert "_required_price_" in plan


async def test_each_requirement_reaches_its_field_with_its_own_arguments() -> None:
    assert await execute(PRICING, PRICING_DATA, "{ items { id tax fee } }") == {
        "data": {"items": [{"id": "i1", "tax": 5, "fee": 24}]}
    }


async def test_requirement_with_a_fragment_on_an_interface_is_sent() -> None:
    assert await execute(PRICING, PRICING_DATA, "{ items { badge } }") == {
        "data": {"items": [{"badge": "by Ana"}]}
    }


# -- 4. @interfaceObject with @requires -----------------------------------------------------

DOCUMENTS = supergraph(
    "files search",
    """
type Query @join__type(graph: FILES) @join__type(graph: SEARCH) {
  files: [Document!]! @join__field(graph: FILES)
}
interface Document @join__type(graph: FILES, key: "id")
  @join__type(graph: SEARCH, key: "id", isInterfaceObject: true) {
  id: ID!
  title: String @join__field(graph: FILES) @join__field(graph: SEARCH, external: true)
  slug: String @join__field(graph: SEARCH, requires: "title")
}
type Memo implements Document @join__implements(graph: FILES, interface: "Document")
  @join__type(graph: FILES, key: "id") {
  id: ID!
  title: String
  slug: String @join__field
}
""",
)


async def test_interface_object_field_with_requires_gets_its_requirement() -> None:
    data: Subgraphs = {
        "files": (
            {"Query.files": lambda *_: [{"__typename": "Memo", "id": "m1", "title": "Q3 Plan"}]},
            {},
        ),
        "search": (
            {},
            {
                "Document": lambda rep: {
                    "id": rep["id"],
                    "slug": rep["title"].lower().replace(" ", "-"),
                }
            },
        ),
    }
    assert await execute(DOCUMENTS, data, "{ files { id slug } }") == {
        "data": {"files": [{"id": "m1", "slug": "q3-plan"}]}
    }


# -- 6. an inconsistent supergraph answers with errors, never with made-up data -------------


def ledger() -> Supergraph:
    return supergraph(
        "ledger wallet",
        """
type Query @join__type(graph: LEDGER) @join__type(graph: WALLET) {
  entry: Entry @join__field(graph: LEDGER)
}
type Entry @join__type(graph: LEDGER, key: "id") @join__type(graph: WALLET, key: "id") {
  id: ID! @join__field(graph: LEDGER, external: true) @join__field(graph: WALLET)
  amount: Int @join__field(graph: WALLET)
}
""",
    )


def test_key_field_a_subgraph_marks_external_is_not_taken_from_it() -> None:
    with pytest.raises(PlanningError, match="Entry"):
        plan_text(ledger(), "{ entry { amount } }")


async def test_inconsistent_supergraph_answers_with_an_error_and_no_data() -> None:
    data: Subgraphs = {
        "ledger": ({"Query.entry": lambda *_: {"id": "e1"}}, {}),
        "wallet": ({}, {"Entry": lambda rep: {"id": rep["id"], "amount": 5}}),
    }
    answer = await execute(ledger(), data, "{ entry { amount } }")
    assert "data" not in answer or answer["data"] is None
    assert answer["errors"][0]["extensions"]["code"] == "QUERY_PLANNING_FAILED"


# -- 2. shareable root fields with no key between their subgraphs ---------------------------

# `weather` is served by three subgraphs, none with a key on Forecast: each is asked for the
# part it has, and the answers merge.
WEATHER = supergraph(
    "sky wind rain",
    """
type Query @join__type(graph: SKY) @join__type(graph: WIND) @join__type(graph: RAIN) {
  forecast: Forecast!
}
type Forecast @join__type(graph: SKY) @join__type(graph: WIND) @join__type(graph: RAIN) {
  city: String!
  cloud: Int! @join__field(graph: SKY)
  wind: Gust! @join__field(graph: WIND)
  rain: Int! @join__field(graph: RAIN)
}
type Gust @join__type(graph: WIND) {
  speed: Int!
}
""",
)


def test_root_field_without_keys_is_fetched_from_each_subgraph_with_its_part() -> None:
    query = "{ forecast { city cloud wind { speed } rain } }"
    assert (
        plan_text(WEATHER, query)
        == """\
QueryPlan {
  Parallel {
    Fetch(service: "wind") {
      {
        forecast {
          city
          wind {
            speed
          }
        }
      }
    },
    Fetch(service: "sky") {
      {
        forecast {
          cloud
        }
      }
    },
    Fetch(service: "rain") {
      {
        forecast {
          rain
        }
      }
    }
  }
}"""
    )


async def test_parts_of_a_shared_root_field_merge_into_one_answer() -> None:
    data: Subgraphs = {
        "sky": ({"Query.forecast": lambda *_: {"city": "Oslo", "cloud": 80}}, {}),
        "wind": ({"Query.forecast": lambda *_: {"city": "Oslo", "wind": {"speed": 7}}}, {}),
        "rain": ({"Query.forecast": lambda *_: {"city": "Oslo", "rain": 3}}, {}),
    }
    query = "{ forecast { city cloud wind { speed } rain } }"
    assert await execute(WEATHER, data, query) == {
        "data": {"forecast": {"city": "Oslo", "cloud": 80, "wind": {"speed": 7}, "rain": 3}}
    }


# -- 3. parent entity calls: a value type's field reached through its parent's key ----------

# `Shelf.label` is a value type in both subgraphs: its `color` is only in `paint`, where it
# can only be reached by fetching the Shelf by key and selecting `label` there.
SHELVES = supergraph(
    "store paint",
    """
type Query @join__type(graph: STORE) @join__type(graph: PAINT) {
  shelves: [Shelf!]! @join__field(graph: STORE)
}
type Shelf @join__type(graph: STORE, key: "id") @join__type(graph: PAINT, key: "id") {
  id: ID!
  label: Label
}
type Label @join__type(graph: STORE) @join__type(graph: PAINT) {
  text: String @join__field(graph: STORE)
  color: String @join__field(graph: PAINT)
}
""",
)


def test_value_type_field_from_another_subgraph_goes_through_the_parent_entity() -> None:
    assert (
        plan_text(SHELVES, "{ shelves { label { text color } } }")
        == """\
QueryPlan {
  Sequence {
    Fetch(service: "store") {
      {
        shelves {
          __typename
          id
          label {
            text
          }
        }
      }
    },
    Flatten(path: "shelves.@") {
      Fetch(service: "paint") {
        {
          ... on Shelf {
            __typename
            id
          }
        } =>
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Shelf {
              label {
                color
              }
            }
          }
        }
      }
    }
  }
}"""
    )


async def test_parent_entity_call_fills_the_value_type() -> None:
    data: Subgraphs = {
        "store": ({"Query.shelves": lambda *_: [{"id": "s1", "label": {"text": "Tea"}}]}, {}),
        "paint": ({}, {"Shelf": lambda rep: {"id": rep["id"], "label": {"color": "green"}}}),
    }
    assert await execute(SHELVES, data, "{ shelves { label { text color } } }") == {
        "data": {"shelves": [{"label": {"text": "Tea", "color": "green"}}]}
    }


# -- 4. @interfaceObject: values planned on the interface when no object type is needed ------

# `tickets` knows Issue only as an interface object; `triage` has the interface and its
# object types; `sla` adds a field through another interface object.
ISSUES = supergraph(
    "tickets triage sla",
    """
type Query @join__type(graph: TICKETS) @join__type(graph: TRIAGE) @join__type(graph: SLA) {
  open: [Issue!]! @join__field(graph: TICKETS)
}
interface Issue @join__type(graph: TRIAGE, key: "id")
  @join__type(graph: TICKETS, key: "id", isInterfaceObject: true)
  @join__type(graph: SLA, key: "id", isInterfaceObject: true) {
  id: ID!
  title: String @join__field(graph: TICKETS)
  overdue: Boolean @join__field(graph: SLA)
}
type Bug implements Issue @join__implements(graph: TRIAGE, interface: "Issue")
  @join__type(graph: TRIAGE, key: "id") {
  id: ID!
  severity: Int @join__field(graph: TRIAGE)
  title: String @join__field
  overdue: Boolean @join__field
}
""",
)

ISSUE_DATA: Subgraphs = {
    "tickets": (
        {"Query.open": lambda *_: [{"__typename": "Issue", "id": "i1", "title": "Crash"}]},
        {"Issue": lambda rep: {"id": rep["id"], "title": "Crash"}},
    ),
    "triage": ({}, {"Issue": lambda rep: {"__typename": "Bug", "id": rep["id"], "severity": 2}}),
    "sla": ({}, {"Issue": lambda rep: {"id": rep["id"], "overdue": True}}),
}


def test_interface_fields_from_interface_objects_skip_the_object_type() -> None:
    assert (
        plan_text(ISSUES, "{ open { title overdue } }")
        == """\
QueryPlan {
  Sequence {
    Fetch(service: "tickets") {
      {
        open {
          __typename
          title
          id
        }
      }
    },
    Flatten(path: "open.@") {
      Fetch(service: "sla") {
        {
          ... on Issue {
            __typename
            id
          }
        } =>
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Issue {
              overdue
            }
          }
        }
      }
    }
  }
}"""
    )


async def test_interface_level_answer_and_object_types_when_asked() -> None:
    assert await execute(ISSUES, ISSUE_DATA, "{ open { title overdue } }") == {
        "data": {"open": [{"title": "Crash", "overdue": True}]}
    }
    query = "{ open { __typename title ... on Bug { severity } } }"
    assert await execute(ISSUES, ISSUE_DATA, query) == {
        "data": {"open": [{"__typename": "Bug", "title": "Crash", "severity": 2}]}
    }


def test_interface_field_only_a_non_resolvable_interface_object_has_fails_to_plan() -> None:
    graph = supergraph(
        "core extras",
        """
type Query @join__type(graph: CORE) @join__type(graph: EXTRAS) {
  thing: Thing @join__field(graph: CORE)
}
interface Thing @join__type(graph: CORE, key: "id")
  @join__type(graph: EXTRAS, key: "id", resolvable: false, isInterfaceObject: true) {
  id: ID!
  note: String @join__field(graph: EXTRAS)
}
""",
    )
    with pytest.raises(PlanningError):
        plan_text(graph, "{ thing { note } }")


# -- 5. unions whose members differ by subgraph ---------------------------------------------

# `Feed.items` is shareable: while either subgraph could answer it, only the members both
# know are asked for; a field only `video` has asks video's members.
FEEDS = supergraph(
    "text video",
    """
type Query @join__type(graph: TEXT) @join__type(graph: VIDEO) {
  feed: Feed @join__field(graph: TEXT)
}
type Feed @join__type(graph: TEXT, key: "id") @join__type(graph: VIDEO, key: "id") {
  id: ID!
  items: [Item!]!
  clips: [Item!]! @join__field(graph: VIDEO)
}
union Item @join__type(graph: TEXT) @join__type(graph: VIDEO)
  @join__unionMember(graph: TEXT, member: "Post") @join__unionMember(graph: VIDEO, member: "Post")
  @join__unionMember(graph: TEXT, member: "Poll") @join__unionMember(graph: VIDEO, member: "Clip")
  = Post | Poll | Clip
type Post @join__type(graph: TEXT) @join__type(graph: VIDEO) {
  body: String
}
type Poll @join__type(graph: TEXT) {
  question: String
}
type Clip @join__type(graph: VIDEO) {
  seconds: Int
}
""",
)


def test_shareable_union_field_asks_only_members_every_candidate_subgraph_knows() -> None:
    query = (
        "{ feed { items { ... on Post { body } ... on Poll { question } }"
        " clips { ... on Post { body } ... on Clip { seconds } } } }"
    )
    assert (
        plan_text(FEEDS, query)
        == """\
QueryPlan {
  Sequence {
    Fetch(service: "text") {
      {
        feed {
          items {
            __typename
            ... on Post {
              body
            }
          }
          __typename
          id
        }
      }
    },
    Flatten(path: "feed") {
      Fetch(service: "video") {
        {
          ... on Feed {
            __typename
            id
          }
        } =>
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Feed {
              clips {
                __typename
                ... on Post {
                  body
                }
                ... on Clip {
                  seconds
                }
              }
            }
          }
        }
      }
    }
  }
}"""
    )


async def test_member_no_candidate_subgraph_shares_answers_null_fields() -> None:
    data: Subgraphs = {
        "text": (
            {
                "Query.feed": lambda *_: {
                    "id": "f1",
                    "items": [
                        {"__typename": "Post", "body": "hi"},
                        {"__typename": "Poll", "question": "why?"},
                    ],
                }
            },
            {},
        ),
        "video": ({}, {"Feed": lambda rep: {"id": rep["id"], "clips": []}}),
    }
    query = "{ feed { items { __typename ... on Post { body } ... on Poll { question } } } }"
    assert await execute(FEEDS, data, query) == {
        "data": {
            "feed": {
                "items": [
                    {"__typename": "Post", "body": "hi"},
                    {"__typename": "Poll", "question": None},
                ]
            }
        }
    }


# -- progressive override -------------------------------------------------------------------

# `score` moves from `legacy` to `modern` under the label `percent(25)`.
SCORES = supergraph(
    "legacy modern",
    """
type Query @join__type(graph: LEGACY) @join__type(graph: MODERN) {
  score: Int @join__field(graph: LEGACY) @join__field(graph: MODERN, override: "legacy", overrideLabel: "percent(25)")
}
""",
)


def served_by(gateway: Gateway) -> str:
    """The subgraph a request for `score` is planned to, with the labels drawn for it."""
    plan = print_plan(gateway.prepare("{ score }", None).plan)
    return "modern" if 'service: "modern"' in plan else "legacy"


async def test_progressive_override_is_drawn_per_request() -> None:
    # Each request draws `percent(25)`: about a quarter are planned with `modern`, and the
    # two plans are each cached once.
    # A fixed seed: the same 400 draws every run. Not a secret, so not `secrets`.
    sample = random.Random(25)  # noqa: S311
    gateway = Gateway(SCORES, SubgraphClient({}), draw=sample.random)
    served = [served_by(gateway) for _ in range(400)]
    assert 70 <= served.count("modern") <= 130
    assert len(gateway.plans) == 2
    data: Subgraphs = {
        "legacy": ({"Query.score": lambda *_: 1}, {}),
        "modern": ({"Query.score": lambda *_: 2}, {}),
    }
    # A draw under 0.25 puts the label in force.
    assert await execute(SCORES, data, "{ score }", draw=lambda: 0.1) == {"data": {"score": 2}}
    assert await execute(SCORES, data, "{ score }", draw=lambda: 0.9) == {"data": {"score": 1}}


async def test_a_configured_override_label_is_in_force_for_every_request() -> None:
    labelled = PlanningOptions(override_labels=frozenset({"percent(25)"}))
    assert 'service: "legacy"' in plan_text(SCORES, "{ score }")
    plan = plan_operation(SCORES, normalize(parse("{ score }"), None), labelled)
    assert 'service: "modern"' in print_plan(plan)
    gateway = Gateway(SCORES, SubgraphClient({}), planning=labelled, draw=lambda: 0.99)
    assert {served_by(gateway) for _ in range(20)} == {"modern"}


# `rank` moves under `percent(12.5)`, `badge` under a label of the operators' own.
LABELS = supergraph(
    "legacy modern",
    """
type Query @join__type(graph: LEGACY) @join__type(graph: MODERN) {
  rank: Int @join__field(graph: LEGACY) @join__field(graph: MODERN, override: "legacy", overrideLabel: "percent(12.5)")
  badge: Int @join__field(graph: LEGACY) @join__field(graph: MODERN, override: "legacy", overrideLabel: "beta")
}
""",
)


def test_only_percent_labels_not_configured_are_drawn() -> None:
    draws: list[float] = []

    def draw() -> float:
        draws.append(0.1)
        return 0.1

    assert OverrideLabels(LABELS, frozenset(), draw).for_request() == {"percent(12.5)"}
    assert draws == [0.1]  # `beta` is never drawn: it is in force only when configured
    configured = OverrideLabels(LABELS, frozenset({"beta"}), lambda: 0.2)
    assert configured.for_request() == {"beta"}


# -- bounded planning -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("options", "setting"),
    [
        (PlanningOptions(max_options=100), "ROUTER_PLANNING_MAX_OPTIONS"),
        (PlanningOptions(timeout_seconds=1e-9), "ROUTER_PLANNING_TIMEOUT_SECONDS"),
    ],
)
async def test_planning_past_its_budget_fails_with_query_planning_failed(
    options: PlanningOptions, setting: str
) -> None:
    # The benchmark workload weighs a few hundred options.
    graph = parse_supergraph((FIXTURES / "supergraph.graphql").read_text())
    query = (FIXTURES / "query.graphql").read_text()
    with pytest.raises(PlanningError, match=setting):
        plan_operation(graph, normalize(parse(query), None), options)
    answer = await execute(graph, {}, query, options)
    assert answer["errors"][0]["extensions"]["code"] == "QUERY_PLANNING_FAILED"
    assert setting in answer["errors"][0]["message"]


# -- cost: the fewest fetches ---------------------------------------------------------------


def test_entity_fields_go_to_the_subgraph_that_has_most_of_them() -> None:
    graph = supergraph(
        "base left middle right",
        """
type Query @join__type(graph: BASE) @join__type(graph: LEFT) @join__type(graph: MIDDLE)
  @join__type(graph: RIGHT) {
  item: Item @join__field(graph: BASE)
}
type Item @join__type(graph: BASE, key: "id") @join__type(graph: LEFT, key: "id")
  @join__type(graph: MIDDLE, key: "id") @join__type(graph: RIGHT, key: "id") {
  id: ID!
  width: Int @join__field(graph: LEFT) @join__field(graph: MIDDLE)
  depth: Int @join__field(graph: MIDDLE) @join__field(graph: RIGHT)
}
""",
    )
    plan = plan_text(graph, "{ item { width depth } }")
    # `left` has the width and `right` the depth; `middle` has both: one entity fetch.
    assert plan.count("Fetch(") == 2
    assert 'Fetch(service: "middle")' in plan


# A seller's name is in `people` and its rating in `scores`; `market` has both, but only on
# the product's seller (it cannot fetch a seller by key). From `catalog`, where the product
# starts, the seller's fields are two fetches (people and scores); the product's seller taken
# from `market` is one.
MARKET = supergraph(
    "catalog market people scores",
    """
type Query @join__type(graph: CATALOG) @join__type(graph: MARKET) @join__type(graph: PEOPLE)
  @join__type(graph: SCORES) {
  product: Product @join__field(graph: CATALOG)
}
type Product @join__type(graph: CATALOG, key: "id") @join__type(graph: MARKET, key: "id") {
  id: ID!
  seller: Seller @join__field(graph: CATALOG) @join__field(graph: MARKET)
}
type Seller @join__type(graph: CATALOG, key: "id")
  @join__type(graph: MARKET, key: "id", resolvable: false) @join__type(graph: PEOPLE, key: "id") @join__type(graph: SCORES, key: "id") {
  id: ID!
  name: String @join__field(graph: MARKET) @join__field(graph: PEOPLE)
  rating: Int @join__field(graph: MARKET) @join__field(graph: SCORES)
}
""",
)


def test_a_field_both_subgraphs_have_is_taken_where_its_selection_costs_fewer_fetches() -> None:
    assert (
        plan_text(MARKET, "{ product { seller { name rating } } }")
        == """\
QueryPlan {
  Sequence {
    Fetch(service: "catalog") {
      {
        product {
          __typename
          id
        }
      }
    },
    Flatten(path: "product") {
      Fetch(service: "market") {
        {
          ... on Product {
            __typename
            id
          }
        } =>
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Product {
              seller {
                name
                rating
              }
            }
          }
        }
      }
    }
  }
}"""
    )


async def test_the_cheaper_path_answers_the_same() -> None:
    data: Subgraphs = {
        "catalog": ({"Query.product": lambda *_: {"id": "p1", "seller": {"id": "s1"}}}, {}),
        "market": (
            {},
            {"Product": lambda rep: {"id": rep["id"], "seller": {"name": "Ada", "rating": 5}}},
        ),
    }
    assert await execute(MARKET, data, "{ product { seller { name rating } } }") == {
        "data": {"product": {"seller": {"name": "Ada", "rating": 5}}}
    }


# -- the planner's own check of every fetch -------------------------------------------------


def test_each_subgraph_schema_is_read_back_from_the_supergraph() -> None:
    music = LISTINGS.subgraph_sdls["music"]
    assert "  code: ID!" in music  # Track.code as music declares it
    assert "union Listing = Track | Album" in music
    assert "  featured: Track" in music
    assert "union _Entity = Track" in music
    shop = LISTINGS.subgraph_sdls["shop"]
    assert "union Listing = Track\n" in shop + "\n"
    assert "Album" not in shop


def test_a_fetch_its_subgraph_would_refuse_fails_planning() -> None:
    from router.planning.selections import OutSelections
    from router.planning.validation import check_fetch

    # In music, `featured` is a Track: an Album fragment there is refused.
    selections = OutSelections()
    selections.field("featured", "featured").selections.fragment("Album").selections.field(
        "title", "title"
    )
    with pytest.raises(PlanningError, match="Track can never be of type Album"):
        check_fetch(LISTINGS, "music", "Query", selections)
    absent = OutSelections()
    absent.field("stock", "stock").selections.fragment("Album").selections.field("code", "code")
    with pytest.raises(PlanningError, match="unknown type Album"):
        check_fetch(LISTINGS, "shop", "Query", absent)
    leaf = OutSelections()
    leaf.field("stock", "stock")
    with pytest.raises(PlanningError, match=r"Query\.stock needs a selection"):
        check_fetch(LISTINGS, "shop", "Query", leaf)
    unknown = OutSelections()
    unknown.field("stock", "stock").selections.field("title", "title")
    with pytest.raises(PlanningError, match=r"no field Track\.title"):
        check_fetch(LISTINGS, "shop", "Query", unknown)
