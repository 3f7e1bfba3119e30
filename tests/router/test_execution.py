"""Executing plans against small real subgraphs: merging, batching, shaping, errors."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator, Iterator
from contextlib import ExitStack
from typing import Any

import orjson
import pytest
from graphql import GraphQLError

from router.execution.client import SubgraphClient
from router.execution.gateway import Gateway
from router.supergraph import parse_supergraph
from tests.router.subgraph_kit import FakeSubgraph, make_subgraph, serve
from tests.router.supergraphs import FIXTURES, SHOP, bench_supergraph
from tests.router.workload import workload_subgraphs

SHOP_GRAPH = parse_supergraph(SHOP)
BENCH_GRAPH = parse_supergraph(bench_supergraph())

PRODUCTS = [
    {
        "__typename": "Product",
        "id": "p1",
        "sku": "s1",
        "title": "Dune",
        "category": "BOOK",
        "weight": 2,
        "dimensions": {"width": 1, "height": 2},
        "warehouse": {"code": "W1"},
    },
    {
        "__typename": "Product",
        "id": "p2",
        "sku": "s2",
        "title": "Chess",
        "category": "GAME",
        "weight": 5,
        "dimensions": {"width": 3, "height": 4},
        "warehouse": {"code": "W2"},
    },
    {
        "__typename": "Product",
        "id": "p3",
        "sku": "s3",
        "title": "Secret",
        "category": "HIDDEN",
        "weight": 1,
        "dimensions": None,
        "warehouse": {"code": "W1"},
    },
]
USERS = {
    "u1": {"id": "u1", "name": "Ada", "email": "ada@example.org"},
    "u2": {"id": "u2", "name": "Bob", "email": None},
}
REVIEWS = [
    {
        "id": "r1",
        "body": "Great",
        "rating": 5,
        "author": {"id": "u1", "name": "Ada"},
        "product": {"id": "p1"},
    },
    {
        "id": "r2",
        "body": "Gone",
        "rating": 1,
        "author": {"id": "u2", "name": "Bob"},
        "product": {"id": "p404"},
    },
]
MUTATION_LOG: list[str] = []


def _price(product: dict[str, Any], _info: Any, currency: str = "EUR") -> dict[str, Any]:
    if product["sku"] == "s2":
        raise GraphQLError("Price unavailable", extensions={"code": "PRICE_UNAVAILABLE"})
    return {"amount": int(product["sku"][1:]) * 100, "currency": currency}


def _login(_root: Any, _info: Any, name: str) -> dict[str, Any]:
    MUTATION_LOG.append(f"login:{name}")
    return USERS["u1"]


def _add_review(_root: Any, _info: Any, sku: str, body: str) -> dict[str, Any]:
    MUTATION_LOG.append(f"addReview:{sku}")
    return {
        "id": "r9",
        "body": body,
        "rating": None,
        "author": {"id": "u1", "name": "Ada"},
        "product": {"id": "p1"},
    }


def _logout(*_: Any) -> bool:
    MUTATION_LOG.append("logout")
    return True


def shop_subgraphs() -> dict[str, FakeSubgraph]:
    by_id = {p["id"]: p for p in PRODUCTS}
    by_sku = {p["sku"]: p for p in PRODUCTS}
    return {
        "accounts": make_subgraph(
            SHOP_GRAPH,
            "accounts",
            resolvers={
                "Query.me": lambda *_: USERS["u1"],
                "Query.users": lambda *_: list(USERS.values()),
                "Mutation.login": _login,
                "Mutation.logout": _logout,
            },
            references={"User": lambda rep: USERS.get(rep["id"])},
        ),
        "catalog": make_subgraph(
            SHOP_GRAPH,
            "catalog",
            resolvers={
                "Query.products": lambda _r, _i, first=10: PRODUCTS[:first],
                "Query.product": lambda _r, _i, sku: by_sku.get(sku),
                "Query.search": lambda *_, **__: [PRODUCTS[0], {"__typename": "User", "id": "u2"}],
                "Query.media": lambda *_: [
                    {"__typename": "Book", "id": "b1", "title": "Dune", "pages": 412},
                    {"__typename": "Film", "id": "f1", "title": "Alien", "minutes": 117},
                ],
                "Query.matrix": lambda *_: [[PRODUCTS[0], None], [PRODUCTS[1]]],
            },
            references={
                "Product": lambda rep: (
                    by_id.get(rep["id"]) if "id" in rep else by_sku.get(rep["sku"])
                ),
                "Book": lambda rep: {"id": rep["id"], "title": "Dune", "pages": 412},
            },
        ),
        "pricing": make_subgraph(
            SHOP_GRAPH,
            "pricing",
            resolvers={"Product.price": _price},
            references={"Product": lambda rep: {"sku": rep["sku"]}},
        ),
        "stock": make_subgraph(
            SHOP_GRAPH,
            "stock",
            resolvers={
                "Product.shippingCost": lambda p, _i: p["weight"] * 10 + p["dimensions"]["height"],
                "Product.insurance": lambda p, _i: p["price"]["amount"] // 10,
            },
            references={
                "Product": lambda rep: {
                    **rep,
                    "inStock": rep["id"] != "p2",
                    "warehouse": {"code": rep["warehouse"]["code"], "city": "Aarhus"},
                }
            },
        ),
        "reviews": make_subgraph(
            SHOP_GRAPH,
            "reviews",
            resolvers={
                "Query.topReviews": lambda *_: REVIEWS,
                "User.reviews": lambda user, _i: [
                    r for r in REVIEWS if r["author"]["id"] == user["id"]
                ],
                "Product.reviewCount": lambda p, _i: sum(
                    r["product"]["id"] == p["id"] for r in REVIEWS
                ),
                "Book.reviewCount": lambda *_: 7,
                "Mutation.addReview": _add_review,
            },
            references={
                "User": lambda rep: {"id": rep["id"]},
                "Product": lambda rep: {"id": rep["id"]},
                "Book": lambda rep: {"id": rep["id"]},
            },
        ),
    }


@pytest.fixture(scope="module")
def shop() -> Iterator[tuple[dict[str, FakeSubgraph], dict[str, str]]]:
    subgraphs = shop_subgraphs()
    with ExitStack() as stack:
        urls = {
            name: stack.enter_context(serve(s.app)) + "/graphql" for name, s in subgraphs.items()
        }
        yield subgraphs, urls


@pytest.fixture
async def gateway(shop: tuple[dict[str, FakeSubgraph], dict[str, str]]) -> AsyncIterator[Gateway]:
    subgraphs, urls = shop
    for subgraph in subgraphs.values():
        subgraph.requests.clear()
    client = SubgraphClient(urls, timeouts={"stock": 0.5})
    try:
        yield Gateway(SHOP_GRAPH, client)
    finally:
        await client.aclose()
        for subgraph in subgraphs.values():
            subgraph.fail_with_status = None
            subgraph.delay_seconds = 0


async def run(
    gateway: Gateway, query: str, variables: dict[str, Any] | None = None
) -> dict[str, Any]:
    prepared = gateway.prepare(query, None)
    return await gateway.execute(
        prepared, gateway.coerce_variables(prepared, variables), {"authorization": "Bearer t"}
    )


async def test_bench_workload_answer_is_byte_exact_and_batched() -> None:
    subgraphs = workload_subgraphs(BENCH_GRAPH)
    with ExitStack() as stack:
        urls = {n: stack.enter_context(serve(s.app)) + "/graphql" for n, s in subgraphs.items()}
        client = SubgraphClient(urls)
        try:
            gateway = Gateway(BENCH_GRAPH, client)
            query = (FIXTURES / "query.graphql").read_text()
            response = await gateway.execute(gateway.prepare(query, "TestQuery"), {}, {})
        finally:
            await client.aclose()
    assert orjson.dumps(response) == (FIXTURES / "expected-response.json").read_bytes().strip()
    # 13 fetches in 4 plan steps: fetches to one subgraph at one step share one request.
    assert {n: len(s.requests) for n, s in subgraphs.items()} == {
        "accounts": 2,
        "inventory": 2,
        "products": 2,
        "reviews": 1,
    }
    for request in subgraphs["products"].requests[1:]:
        variables = request["payload"]["variables"]
        for name, reps in variables.items():
            if name.startswith("representations"):
                assert len(reps) == len({json.dumps(r, sort_keys=True) for r in reps})


async def test_root_fields_aliases_arguments_and_typename(gateway: Gateway) -> None:
    response = await run(
        gateway,
        "{ me { __typename name } two: products(first: 2) { sku t: title __typename } one: products(first: 1) { sku } }",
    )
    assert response == {
        "data": {
            "me": {"__typename": "User", "name": "Ada"},
            "two": [
                {"sku": "s1", "t": "Dune", "__typename": "Product"},
                {"sku": "s2", "t": "Chess", "__typename": "Product"},
            ],
            "one": [{"sku": "s1"}],
        }
    }


async def test_requires_keys_value_types_and_headers(gateway: Gateway, shop: Any) -> None:
    response = await run(
        gateway,
        '{ products(first: 1) { shippingCost inStock warehouse { code city } eur: price { amount currency } dkk: price(currency: "DKK") { currency } } }',
    )
    assert response == {
        "data": {
            "products": [
                {
                    "shippingCost": 22,
                    "inStock": True,
                    "warehouse": {"code": "W1", "city": "Aarhus"},
                    "eur": {"amount": 100, "currency": "EUR"},
                    "dkk": {"currency": "DKK"},
                }
            ]
        }
    }
    stock_request = shop[0]["stock"].requests[0]
    assert stock_request["headers"]["authorization"] == "Bearer t"
    assert stock_request["payload"]["variables"]["representations"] == [
        {
            "__typename": "Product",
            "id": "p1",
            "warehouse": {"code": "W1"},
            "weight": 2,
            "dimensions": {"width": 1, "height": 2},
        }
    ]


async def test_subgraph_errors_are_rerooted_with_service_name_and_code(gateway: Gateway) -> None:
    response = await run(gateway, "{ products(first: 2) { sku price { amount } } }")
    assert response["data"] == {
        "products": [{"sku": "s1", "price": {"amount": 100}}, {"sku": "s2", "price": None}]
    }
    assert response["errors"] == [
        {
            "message": "Price unavailable",
            "path": ["products", 1, "price"],
            "extensions": {"code": "PRICE_UNAVAILABLE", "serviceName": "pricing"},
        }
    ]


async def test_null_entity_propagates_to_the_nearest_nullable_parent(gateway: Gateway) -> None:
    response = await run(gateway, "{ topReviews { id product { sku } author { name } } }")
    assert response["data"] == {
        "topReviews": [
            {"id": "r1", "product": {"sku": "s1"}, "author": {"name": "Ada"}},
            {"id": "r2", "product": None, "author": {"name": "Bob"}},
        ]
    }
    assert response["errors"] == [
        {
            "message": "Cannot return null for non-nullable field Product.sku.",
            "path": ["topReviews", 1, "product", "sku"],
            "extensions": {"code": "INVALID_NULL"},
        }
    ]


async def test_inaccessible_enum_value_is_not_leaked(gateway: Gateway) -> None:
    response = await run(gateway, "{ products { category } }")
    assert response["data"] == {
        "products": [{"category": "BOOK"}, {"category": "GAME"}, {"category": None}]
    }
    assert [e["path"] for e in response["errors"]] == [["products", 2, "category"]]


async def test_unions_interfaces_fragments_and_conditions(gateway: Gateway) -> None:
    query = """
      query($withReviews: Boolean!, $noMedia: Boolean!) {
        search(text: "x") {
          __typename
          ... on Product { sku reviewCount }
          ... on User { name reviews @include(if: $withReviews) { body } }
        }
        media @skip(if: $noMedia) { __typename id ...M }
      }
      fragment M on Media { title ... on Book { pages reviewCount } ... on Film { minutes } }
    """
    response = await run(gateway, query, {"withReviews": True, "noMedia": False})
    assert response == {
        "data": {
            "search": [
                {"__typename": "Product", "sku": "s1", "reviewCount": 1},
                {"__typename": "User", "name": "Bob", "reviews": [{"body": "Gone"}]},
            ],
            "media": [
                {"__typename": "Book", "id": "b1", "title": "Dune", "pages": 412, "reviewCount": 7},
                {"__typename": "Film", "id": "f1", "title": "Alien", "minutes": 117},
            ],
        }
    }
    response = await run(gateway, query, {"withReviews": False, "noMedia": True})
    assert response == {
        "data": {
            "search": [
                {"__typename": "Product", "sku": "s1", "reviewCount": 1},
                {"__typename": "User", "name": "Bob"},
            ]
        }
    }


async def test_lists_of_lists_with_null_items(gateway: Gateway) -> None:
    response = await run(gateway, "{ matrix { sku inStock } }")
    assert response == {
        "data": {
            "matrix": [[{"sku": "s1", "inStock": True}, None], [{"sku": "s2", "inStock": False}]]
        }
    }


async def test_mutations_run_in_order(gateway: Gateway) -> None:
    MUTATION_LOG.clear()
    response = await run(
        gateway,
        'mutation { a: login(name: "ada") { name } addReview(sku: "s1", body: "Nice") { id author { email } } logout }',
    )
    assert MUTATION_LOG == ["login:ada", "addReview:s1", "logout"]
    assert response == {
        "data": {
            "a": {"name": "Ada"},
            "addReview": {"id": "r9", "author": {"email": "ada@example.org"}},
            "logout": True,
        }
    }


async def test_failing_subgraph_gives_partial_data(gateway: Gateway, shop: Any) -> None:
    shop[0]["stock"].fail_with_status = 500
    response = await run(gateway, "{ products(first: 1) { sku inStock } }")
    assert response["data"] == {"products": [{"sku": "s1", "inStock": None}]}
    assert len(response["errors"]) == 1
    assert response["errors"][0]["extensions"] == {
        "code": "SUBREQUEST_HTTP_ERROR",
        "serviceName": "stock",
        "retryAfter": 5,
    }
    assert response["errors"][0]["path"] == ["products", 0]  # where data is missing
    assert "_entities" not in json.dumps(response)


async def test_an_unreachable_root_subgraph_is_the_only_error(gateway: Gateway, shop: Any) -> None:
    shop[0]["catalog"].fail_with_status = 502
    response = await run(gateway, "{ products(first: 1) { sku } }")  # `[Product!]!`
    assert response["data"] is None
    # The failed fetch explains the missing non-null field: no second error says it again.
    [error] = response["errors"]
    assert error["extensions"] == {
        "code": "SUBREQUEST_HTTP_ERROR",
        "serviceName": "catalog",
        "retryAfter": 5,
    }


async def test_timed_out_subgraph_gives_partial_data(gateway: Gateway, shop: Any) -> None:
    shop[0]["stock"].delay_seconds = 3
    response = await run(gateway, "{ products(first: 1) { sku inStock } }")
    assert response["data"] == {"products": [{"sku": "s1", "inStock": None}]}
    assert response["errors"][0]["extensions"] == {
        "code": "GATEWAY_TIMEOUT",
        "serviceName": "stock",
        "retryAfter": 5,
    }


async def test_introspection_is_answered_by_the_router(gateway: Gateway, shop: Any) -> None:
    response = await run(
        gateway, '{ __typename __type(name: "Product") { name fields { name } } me { id } }'
    )
    data = response["data"]
    assert data["__typename"] == "Query"
    assert data["me"] == {"id": "u1"}
    names = [f["name"] for f in data["__type"]["fields"]]
    assert "shippingCost" in names
    assert "_entities" not in json.dumps(response)
    schema = await run(gateway, "{ __schema { types { name } } }")
    type_names = {t["name"] for t in schema["data"]["__schema"]["types"]}
    assert "Product" in type_names
    assert not type_names & {"join__Graph", "_Any", "_Entity", "link__Purpose"}
    assert all(len(s.requests) == 1 for n, s in shop[0].items() if n == "accounts")


def test_invalid_documents_are_refused_before_any_subgraph_call(
    gateway: Gateway, shop: Any
) -> None:
    from router.pipeline.outcome import Refused

    with pytest.raises(Refused) as caught:
        gateway.prepare("{ products { nope } }", None)
    assert caught.value.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"
    with pytest.raises(Refused):
        gateway.prepare("{ secret }", None)  # @inaccessible
    assert all(not s.requests for s in shop[0].values())


async def test_requires_with_arguments_next_to_the_same_field_with_other_arguments(
    gateway: Gateway, shop: Any
) -> None:
    response = await run(
        gateway, '{ products(first: 1) { insurance price(currency: "DKK") { amount currency } } }'
    )
    assert response == {
        "data": {"products": [{"insurance": 10, "price": {"amount": 100, "currency": "DKK"}}]}
    }
    reps = shop[0]["stock"].requests[-1]["payload"]["variables"]["representations"]
    assert reps[0]["price"] == {"amount": 100}


def test_objects_with_a_null_key_are_not_fetched() -> None:
    from router.execution.batches import build_batches
    from router.planning import Fetch, Flatten
    from router.supergraph import parse_field_set

    fetch = Fetch(
        id=1,
        subgraph="catalog",
        operation="query { _entities }",
        operation_kind="query",
        variable_usages=(),
        requires={"Product": parse_field_set("id")},
        key_fields={"Product": frozenset({"id"})},
    )
    data = {
        "items": [
            {"__typename": "Product", "id": "p1"},
            {"__typename": "Product", "id": None},
            {"__typename": "Product", "id": "p1"},
            {"__typename": "Review", "id": "r1"},
            None,
        ]
    }
    [batch] = build_batches(data, Flatten(("items", "@"), fetch))
    assert batch.representations == [{"__typename": "Product", "id": "p1"}]
    assert batch.positions == [[data["items"][0], data["items"][2]]]


MEDIA_ITEMS = {
    "b1": {"__typename": "Book", "id": "b1", "title": "Dune", "pages": 412},
    "f1": {"__typename": "Film", "id": "f1", "title": "Alien", "minutes": 117},
}
STARS = {"b1": 5, "f1": 4}


@pytest.fixture(scope="module")
def media() -> Iterator[tuple[dict[str, FakeSubgraph], dict[str, str]]]:
    from tests.router.supergraphs import MEDIA

    graph = parse_supergraph(MEDIA)
    subgraphs = {
        "catalog": make_subgraph(
            graph,
            "catalog",
            resolvers={"Query.library": lambda *_: list(MEDIA_ITEMS.values())},
            references={"Media": lambda rep: MEDIA_ITEMS.get(rep["id"])},
        ),
        "ratings": make_subgraph(
            graph,
            "ratings",
            resolvers={
                "Query.topRated": lambda *_: [{"id": "f1"}, {"id": "b1"}],
                "Media.stars": lambda media, _i: STARS[media["id"]],
            },
            references={"Media": lambda rep: {"id": rep["id"]}},
        ),
    }
    with ExitStack() as stack:
        urls = {n: stack.enter_context(serve(s.app)) + "/graphql" for n, s in subgraphs.items()}
        yield subgraphs, urls


async def test_interface_object_fields_and_values(
    media: tuple[dict[str, FakeSubgraph], dict[str, str]],
) -> None:
    from tests.router.supergraphs import MEDIA

    client = SubgraphClient(media[1])
    try:
        gateway = Gateway(parse_supergraph(MEDIA), client)
        library = await run(gateway, "{ library { title stars ... on Book { pages } } }")
        top = await run(gateway, "{ topRated { __typename stars title ... on Film { minutes } } }")
    finally:
        await client.aclose()
    assert library == {
        "data": {
            "library": [
                {"title": "Dune", "stars": 5, "pages": 412},
                {"title": "Alien", "stars": 4},
            ]
        }
    }
    assert top == {
        "data": {
            "topRated": [
                {"__typename": "Film", "stars": 4, "title": "Alien", "minutes": 117},
                {"__typename": "Book", "stars": 5, "title": "Dune"},
            ]
        }
    }
    sent = [r["payload"]["variables"] for r in media[0]["ratings"].requests]
    assert {"__typename": "Media", "id": "b1"} in sent[0]["representations"]


def test_subscriptions_are_prepared_like_every_operation_with_their_upstream_plan() -> None:
    sdl = SHOP.replace(
        "  mutation: Mutation\n", "  mutation: Mutation\n  subscription: Subscription\n"
    ) + (
        "\ntype Subscription @join__type(graph: ACCOUNTS) { userChanged: User @join__field(graph: ACCOUNTS) }\n"
    )
    gateway = Gateway(parse_supergraph(sdl), SubgraphClient({}))
    prepared = gateway.prepare("subscription { userChanged { id } }", None)
    assert prepared.kind == "subscription"
    assert prepared.subscription is not None
    assert prepared.subscription.primary.subgraph == "accounts"


async def test_from_context_arguments_are_sent_per_context_value() -> None:
    from tests.router.supergraphs import CONTEXT

    graph = parse_supergraph(CONTEXT)
    shelves = [
        {"id": "dk", "currency": "DKK", "items": [{"sku": "a"}, {"sku": "b"}]},
        {"id": "eu", "currency": "EUR", "items": [{"sku": "a"}]},
    ]
    rates = {"DKK": 7, "EUR": 1}
    subgraphs = {
        "shelf": make_subgraph(graph, "shelf", resolvers={"Query.shelves": lambda *_: shelves}),
        "prices": make_subgraph(
            graph,
            "prices",
            resolvers={"Item.price": lambda item, _i, currency: 10 * rates[currency]},
            references={"Item": lambda rep: {"sku": rep["sku"]}},
        ),
    }
    with ExitStack() as stack:
        urls = {n: stack.enter_context(serve(s.app)) + "/graphql" for n, s in subgraphs.items()}
        client = SubgraphClient(urls)
        try:
            gateway = Gateway(graph, client)
            response = await run(gateway, "{ shelves { id items { sku price } } }")
        finally:
            await client.aclose()
    assert response == {
        "data": {
            "shelves": [
                {"id": "dk", "items": [{"sku": "a", "price": 70}, {"sku": "b", "price": 70}]},
                {"id": "eu", "items": [{"sku": "a", "price": 10}]},
            ]
        }
    }
    [request] = subgraphs["prices"].requests
    assert request["payload"]["variables"]["contextualArgument_0_0"] == "DKK"
    assert request["payload"]["variables"]["contextualArgument_0_1"] == "EUR"


async def test_introspection_inside_root_fragments(gateway: Gateway) -> None:
    response = await run(
        gateway,
        'query { ...Meta ... on Query { me { id } } } fragment Meta on Query { t: __type(name: "Money") { name } }',
    )
    assert response == {"data": {"t": {"name": "Money"}, "me": {"id": "u1"}}}
