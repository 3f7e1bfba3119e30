"""The four subgraphs of the federation benchmark workload, serving `fixtures/data.json`."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from typing import Any

from router.supergraph import Supergraph
from tests.router.subgraph_kit import FakeSubgraph, make_subgraph, serve
from tests.router.supergraphs import FIXTURES


def workload_subgraphs(supergraph: Supergraph) -> dict[str, FakeSubgraph]:
    data = json.loads((FIXTURES / "data.json").read_text())
    users = {u["id"]: u for u in data["USERS"]}
    products = {p["upc"]: p for p in data["PRODUCTS"]}
    stock = {i["upc"]: i for i in data["INVENTORY"]}
    reviews = data["REVIEWS"]

    def review(r: dict[str, Any]) -> dict[str, Any]:
        return {"id": r["id"], "body": r["body"], "product": {"upc": r["product"]["upc"]}}

    return {
        "accounts": make_subgraph(
            supergraph,
            "accounts",
            resolvers={
                "Query.me": lambda *_: users["1"],
                "Query.user": lambda _r, _i, id: users.get(id),
                "Query.users": lambda *_: list(users.values()),
            },
            references={"User": lambda rep: users.get(rep["id"])},
        ),
        "inventory": make_subgraph(
            supergraph,
            "inventory",
            # The workload's expected answer has no shipping estimates.
            resolvers={"Product.shippingEstimate": lambda *_: None},
            references={
                "Product": lambda rep: (
                    {**rep, "inStock": stock[rep["upc"]]["inStock"]}
                    if rep["upc"] in stock
                    else None
                )
            },
        ),
        "products": make_subgraph(
            supergraph,
            "products",
            resolvers={
                "Query.topProducts": lambda _r, _i, first=5: list(products.values())[:first]
            },
            references={"Product": lambda rep: products.get(rep["upc"])},
        ),
        "reviews": make_subgraph(
            supergraph,
            "reviews",
            resolvers={
                "User.reviews": lambda *_: [review(r) for r in reviews[:2]],
                "Product.reviews": lambda product, _i: [
                    review(r) for r in reviews if r["product"]["upc"] == product["upc"]
                ],
                "Review.author": lambda *_: {"id": "1", "username": users["1"]["username"]},
            },
            references={
                "User": lambda rep: {"id": rep["id"]},
                "Product": lambda rep: {"upc": rep["upc"]},
                "Review": lambda rep: next(
                    (review(r) for r in reviews if r["id"] == rep["id"]), None
                ),
            },
        ),
    }


@contextmanager
def served_workload(
    supergraph: Supergraph,
) -> Iterator[tuple[dict[str, FakeSubgraph], dict[str, str]]]:
    """The workload's subgraphs, each served on its own port: them and their GraphQL URLs."""
    found = workload_subgraphs(supergraph)
    with ExitStack() as stack:
        urls = {n: stack.enter_context(serve(s.app)) + "/graphql" for n, s in found.items()}
        yield found, urls
