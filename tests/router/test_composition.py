"""Composition: subgraph SDLs -> standard supergraph SDL, equivalent to reference composition."""

from __future__ import annotations

import pytest
from graphql import build_schema, lexicographic_sort_schema, print_schema

from router.composition import CompositionError, SubgraphDefinition, compose
from router.supergraph import Supergraph, parse_supergraph
from tests.router.supergraphs import FIXTURES, bench_supergraph

LINK = 'extend schema @link(url: "https://specs.apollo.dev/federation/v2.3", import: {imports})\n'


def subgraph(
    name: str,
    sdl: str,
    imports: str = '["@key", "@shareable", "@external", "@requires", "@provides", "@override", "@inaccessible", "@tag"]',
) -> SubgraphDefinition:
    return SubgraphDefinition(name, f"http://{name}/graphql", LINK.format(imports=imports) + sdl)


def _signature(supergraph: Supergraph) -> dict[str, object]:
    """What the router uses of a supergraph, in a comparable form."""
    found: dict[str, object] = {}
    for name, info in supergraph.types.items():
        found[name] = (
            info.kind,
            sorted(info.subgraphs),
            sorted((k.subgraph, k.text, k.resolvable) for k in info.keys),
            {
                field_name: (
                    field.type_ref,
                    sorted(field.resolvable_in),
                    sorted(
                        (s.subgraph, s.external, str(s.requires), str(s.provides))
                        for s in field.sources
                    ),
                )
                for field_name, field in info.fields.items()
            },
        )
    return found


def _api(supergraph: Supergraph) -> str:
    return print_schema(lexicographic_sort_schema(build_schema(supergraph.api_sdl)))


def test_bench_subgraphs_compose_to_the_reference_supergraph() -> None:
    ports = {"accounts": 4201, "inventory": 4202, "products": 4203, "reviews": 4204}
    definitions = [
        SubgraphDefinition(p.stem, f"http://127.0.0.1:{ports[p.stem]}/graphql", p.read_text())
        for p in sorted((FIXTURES / "subgraphs").glob("*.graphql"))
    ]
    composed = parse_supergraph(compose(definitions))
    reference = parse_supergraph(bench_supergraph())
    assert composed.subgraphs == reference.subgraphs
    assert _signature(composed) == _signature(reference)
    assert _api(composed) == _api(reference)


def test_errors_are_reported_all_at_once_naming_subgraph_type_and_field() -> None:
    a = subgraph(
        "a",
        'type Query { p: Product }\ntype Product @key(fields: "id") { id: ID! name: String size: Int }',
    )
    b = subgraph("b", 'type Product @key(fields: "sku") { id: ID! name: String size: String }')
    with pytest.raises(CompositionError) as caught:
        compose([a, b])
    errors = "\n".join(caught.value.errors)
    assert '[b] Field "Product.size" has type "String" here but "Int" in another subgraph' in errors
    assert 'Non-shareable field "Product.name" is resolved from subgraphs a, b' in errors
    assert '[b] @key(fields: "sku") on "Product": field "Product.sku" does not exist' in errors


def test_override_shareable_inaccessible_tags_enums_interfaces_and_unions() -> None:
    a = subgraph(
        "a",
        """
        type Query { node(id: ID!): Node  search: [Result!]!  color: Color }
        interface Node { id: ID! }
        type User implements Node @key(fields: "id") { id: ID! name: String @shareable  secret: String @inaccessible }
        type Post implements Node @key(fields: "id") { id: ID! title: String @tag(name: "public") }
        union Result = User | Post
        enum Color { RED GREEN }
        """,
    )
    b = subgraph(
        "b",
        """
        type User @key(fields: "id") { id: ID! name: String @shareable  karma: Int }
        type Post @key(fields: "id") { id: ID! title: String @override(from: "a") }
        enum Color { RED BLUE }
        type Query { favourite: Color }
        """,
    )
    supergraph = parse_supergraph(compose([a, b]))
    post = supergraph.types["Post"]
    assert post.fields["title"].resolvable_in == {"b"}
    assert supergraph.types["User"].fields["name"].resolvable_in == {"a", "b"}
    assert supergraph.types["Color"].enum_values == {
        "RED": frozenset({"a", "b"}),
        "GREEN": frozenset({"a"}),
        "BLUE": frozenset({"b"}),
    }
    assert supergraph.possible_types("Node", "a") == ("Post", "User")
    assert supergraph.possible_types("Result", "a") == ("User", "Post")
    assert "secret" not in supergraph.api_sdl
    assert "karma: Int" in supergraph.api_sdl


def test_federation_1_subgraphs_compose() -> None:
    accounts = SubgraphDefinition(
        "accounts",
        "http://accounts",
        'type Query { me: User } type User @key(fields: "id") { id: ID! name: String }',
    )
    reviews = SubgraphDefinition(
        "reviews",
        "http://reviews",
        'extend type User @key(fields: "id") { id: ID! @external reviews: [String] }',
    )
    supergraph = parse_supergraph(compose([accounts, reviews]))
    user = supergraph.types["User"]
    assert user.fields["reviews"].resolvable_in == {"reviews"}
    assert user.is_entity_in("accounts")
    assert user.is_entity_in("reviews")


def test_interface_objects_compose() -> None:
    catalog = subgraph(
        "catalog",
        """
        type Query { library: [Media!]! }
        interface Media @key(fields: "id") { id: ID! title: String }
        type Book implements Media @key(fields: "id") { id: ID! title: String pages: Int }
        """,
    )
    ratings = subgraph(
        "ratings",
        'type Query { topRated: [Media!]! }\ntype Media @key(fields: "id") @interfaceObject { id: ID! stars: Int }',
        imports='["@key", "@interfaceObject"]',
    )
    supergraph = parse_supergraph(compose([catalog, ratings]))
    media = supergraph.types["Media"]
    assert media.kind == "interface"
    assert media.interface_object_in == {"ratings"}
    assert media.fields["stars"].resolvable_in == {"ratings"}
    assert supergraph.types["Book"].fields["stars"].resolvable_in == frozenset()
    assert "stars: Int" in supergraph.api_sdl


def test_context_and_from_context_compose_to_context_arguments() -> None:
    from graphql import parse as parse_document

    from router.planning import normalize, plan_operation, print_plan

    shelf = subgraph(
        "shelf",
        """
        type Query { shelves: [Shelf!]! }
        type Shelf @key(fields: "id") @context(name: "market") { id: ID! currency: String! items: [Item!]! }
        type Item @key(fields: "sku") {
          sku: ID!
          price(currency: String! @fromContext(field: "$market { currency }")): Int!
        }
        """,
        imports='["@key", "@context", "@fromContext"]',
    )
    supergraph = parse_supergraph(compose([shelf]))
    assert supergraph.types["Shelf"].contexts == {"shelf__market"}
    source = supergraph.types["Item"].fields["price"].source("shelf")
    assert source is not None
    [argument] = source.context_arguments
    assert (argument.name, argument.type, argument.context) == (
        "currency",
        "String!",
        "shelf__market",
    )
    assert "price: Int!" in supergraph.api_sdl  # the contextual argument is not the client's
    plan = print_plan(
        plan_operation(
            supergraph, normalize(parse_document("{ shelves { items { price } } }"), None)
        )
    )
    assert 'context: $contextualArgument_0 = { currency } at "shelves.@"' in plan
    assert "price(currency: $contextualArgument_0)" in plan
