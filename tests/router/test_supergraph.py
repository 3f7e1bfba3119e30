"""Reading supergraph SDLs into the model, and deriving the API schema clients see."""

from __future__ import annotations

import pytest

from router.supergraph import SupergraphError, parse_supergraph
from tests.router.supergraphs import JOIN_HEADER, SHOP, bench_supergraph


def test_bench_supergraph_subgraphs_keys_and_field_sources() -> None:
    supergraph = parse_supergraph(bench_supergraph())
    assert {name: s.url for name, s in supergraph.subgraphs.items()} == {
        "accounts": "http://127.0.0.1:4201/graphql",
        "inventory": "http://127.0.0.1:4202/graphql",
        "products": "http://127.0.0.1:4203/graphql",
        "reviews": "http://127.0.0.1:4204/graphql",
    }
    product = supergraph.types["Product"]
    assert sorted((k.subgraph, k.text) for k in product.keys) == [
        ("inventory", "upc"),
        ("products", "upc"),
        ("reviews", "upc"),
    ]
    assert product.fields["price"].resolvable_in == {"products"}
    assert product.fields["upc"].resolvable_in == {"inventory", "products", "reviews"}
    estimate = product.fields["shippingEstimate"].source("inventory")
    assert estimate is not None
    assert [i.name for i in estimate.requires] == ["price", "weight"]
    author = supergraph.types["Review"].fields["author"].source("reviews")
    assert author is not None
    assert [i.name for i in author.provides] == ["username"]
    assert supergraph.types["User"].fields["username"].source("reviews").external  # type: ignore[union-attr]


def test_api_schema_hides_federation_machinery_and_inaccessible_elements() -> None:
    supergraph = parse_supergraph(SHOP)
    api = supergraph.api_sdl
    for hidden in (
        "join__",
        "link__",
        "@link",
        "@inaccessible",
        "@tag",
        "secret",
        "internalNote",
        "HIDDEN",
        "_entities",
    ):
        assert hidden not in api, hidden
    assert "type Query {" in api
    assert "type Mutation {" in api
    assert 'price(currency: String = "EUR"): Money' in api
    assert "union SearchResult = Product | User" in api


def test_override_resolvable_only_in_the_overriding_subgraph() -> None:
    supergraph = parse_supergraph(SHOP)
    assert supergraph.types["Product"].fields["title"].resolvable_in == {"catalog"}


def test_memberships_and_possible_types_per_subgraph() -> None:
    supergraph = parse_supergraph(SHOP)
    assert supergraph.possible_types("Media") == ("Book", "Film")
    assert supergraph.possible_types("Media", "catalog") == ("Book", "Film")
    assert supergraph.possible_types("Media", "reviews") == ()
    assert supergraph.possible_types("SearchResult", "catalog") == ("Product", "User")
    user = supergraph.types["User"]
    assert not user.is_entity_in("catalog")
    assert user.is_entity_in("reviews")


def test_renamed_join_spec_is_understood() -> None:
    sdl = """
    schema @link(url: "https://specs.apollo.dev/link/v1.0")
           @link(url: "https://specs.apollo.dev/join/v0.3", as: "j", for: EXECUTION) { query: Query }
    directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA
    directive @j__graph(name: String!, url: String!) on ENUM_VALUE
    directive @j__type(graph: j__Graph!, key: j__FieldSet) repeatable on OBJECT
    scalar j__FieldSet
    scalar link__Import
    enum link__Purpose { SECURITY EXECUTION }
    enum j__Graph { A @j__graph(name: "a", url: "http://a") }
    type Query @j__type(graph: A) { hello: String }
    """
    supergraph = parse_supergraph(sdl)
    assert list(supergraph.subgraphs) == ["a"]
    assert supergraph.types["Query"].fields["hello"].resolvable_in == {"a"}
    assert "j__" not in supergraph.api_sdl


def test_federation_1_supergraph_with_core_and_owner() -> None:
    sdl = """
    schema @core(feature: "https://specs.apollo.dev/core/v0.2")
           @core(feature: "https://specs.apollo.dev/join/v0.1", for: EXECUTION) { query: Query }
    directive @core(feature: String!, as: String, for: core__Purpose) repeatable on SCHEMA
    directive @join__field(graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet) on FIELD_DEFINITION
    directive @join__type(graph: join__Graph!, key: join__FieldSet) repeatable on OBJECT | INTERFACE
    directive @join__owner(graph: join__Graph!) on OBJECT | INTERFACE
    directive @join__graph(name: String!, url: String!) on ENUM_VALUE
    scalar join__FieldSet
    enum core__Purpose { EXECUTION SECURITY }
    enum join__Graph {
      ACCOUNTS @join__graph(name: "accounts" url: "http://accounts")
      REVIEWS @join__graph(name: "reviews" url: "http://reviews")
    }
    type Query { me: User @join__field(graph: ACCOUNTS) }
    type User @join__owner(graph: ACCOUNTS) @join__type(graph: ACCOUNTS, key: "id")
              @join__type(graph: REVIEWS, key: "id") {
      id: ID!
      name: String
      reviewCount: Int @join__field(graph: REVIEWS)
    }
    """
    supergraph = parse_supergraph(sdl)
    user = supergraph.types["User"]
    assert user.fields["name"].resolvable_in == {"accounts"}
    assert user.fields["reviewCount"].resolvable_in == {"reviews"}
    assert "core__" not in supergraph.api_sdl
    assert "join__" not in supergraph.api_sdl


@pytest.mark.parametrize(
    ("sdl", "message"),
    [
        ("type Query { a: Int }", "schema definition"),
        (
            'schema @link(url: "https://specs.apollo.dev/link/v1.0") { query: Query } type Query { a: Int }',
            "join spec",
        ),
        (
            JOIN_HEADER.replace(
                '@link(url: "https://specs.apollo.dev/tag/v0.3")',
                '@link(url: "https://specs.apollo.dev/authenticated/v0.1", for: SECURITY)',
            )
            + 'enum join__Graph { A @join__graph(name: "a", url: "http://a") } type Query { a: Int }',
            "authenticated/v0.1",
        ),
        (
            JOIN_HEADER.replace(
                '@link(url: "https://specs.apollo.dev/tag/v0.3")',
                '@link(url: "https://specs.example.com/sharding/v1.0", for: EXECUTION)',
            )
            + 'enum join__Graph { A @join__graph(name: "a", url: "http://a") } type Query { a: Int }',
            "sharding/v1.0",
        ),
        ("schema { query: Query", "syntax"),
    ],
)
def test_unsupported_or_invalid_supergraphs_fail_clearly(sdl: str, message: str) -> None:
    with pytest.raises(SupergraphError, match=message.replace("(", r"\(")):
        parse_supergraph(sdl)


def test_progressive_override_is_in_force_only_under_a_configured_label() -> None:
    sdl = (
        JOIN_HEADER.replace("join/v0.3", "join/v0.4")
        .replace("usedOverridden: Boolean)", "usedOverridden: Boolean, overrideLabel: String)")
        .replace("  mutation: Mutation\n", "")
        + 'enum join__Graph { A @join__graph(name: "a", url: "http://a") B @join__graph(name: "b", url: "http://b") }\n'
        + "type Query @join__type(graph: A) @join__type(graph: B) {\n"
        + '  total: Int @join__field(graph: A, override: "b", overrideLabel: "percent(25)")'
        + " @join__field(graph: B)\n}\n"
    )
    supergraph = parse_supergraph(sdl)
    total = supergraph.types["Query"].fields["total"]
    assert total.resolvable_in == {"b"}
    labelled = supergraph.with_override_labels(frozenset({"percent(25)"}))
    assert labelled.types["Query"].fields["total"].resolvable_in == {"a"}
    other = supergraph.with_override_labels(frozenset({"percent(50)"}))
    assert other.types["Query"].fields["total"].resolvable_in == {"b"}
    source = total.source("a")
    assert source is not None
    assert source.override_label == "percent(25)"
