"""The federated query graph of small supergraphs: every root and edge, printed."""

from __future__ import annotations

from router.planning.query_graph import Node, build_query_graph
from tests.router.test_planner_federation import supergraph

# Products in a catalog; shipping needs a product's weight (@requires) and a warehouse's
# context; reviews name their product, providing its name (@provides) though the name is the
# catalog's.
SHOP = supergraph(
    "catalog shipping reviews",
    """
type Query @join__type(graph: CATALOG) @join__type(graph: SHIPPING) @join__type(graph: REVIEWS) {
  product(upc: ID!): Product @join__field(graph: CATALOG)
  topReviews: [Review!]! @join__field(graph: REVIEWS)
}
type Product
  @join__type(graph: CATALOG, key: "upc")
  @join__type(graph: SHIPPING, key: "upc")
  @join__type(graph: REVIEWS, key: "upc", resolvable: false)
{
  upc: ID!
  name: String @join__field(graph: CATALOG) @join__field(graph: REVIEWS, external: true)
  weight: Int @join__field(graph: CATALOG) @join__field(graph: SHIPPING, external: true)
  shippingCost: Int @join__field(graph: SHIPPING, requires: "weight")
}
type Review @join__type(graph: REVIEWS) {
  stars: Int
  product: Product @join__field(graph: REVIEWS, provides: "name")
}
""",
)

# Media: an entity interface in `library`; `ratings` knows it only as an @interfaceObject;
# `shelf` returns a union of which it knows one member.
MEDIA = supergraph(
    "library ratings shelf",
    """
type Query @join__type(graph: LIBRARY) @join__type(graph: RATINGS) @join__type(graph: SHELF) {
  media: [Media!]! @join__field(graph: LIBRARY)
  topRated: [Media!]! @join__field(graph: RATINGS)
  shelf: [Item!]! @join__field(graph: SHELF)
}
interface Media
  @join__type(graph: LIBRARY, key: "id")
  @join__type(graph: RATINGS, key: "id", isInterfaceObject: true)
{
  id: ID!
  title: String @join__field(graph: LIBRARY)
  rating: Int @join__field(graph: RATINGS)
}
type Book implements Media
  @join__implements(graph: LIBRARY, interface: "Media")
  @join__type(graph: LIBRARY, key: "id")
  @join__type(graph: SHELF, key: "id")
{
  id: ID!
  title: String @join__field(graph: LIBRARY)
  rating: Int @join__field
}
type Movie implements Media
  @join__implements(graph: LIBRARY, interface: "Media")
  @join__type(graph: LIBRARY, key: "id")
{
  id: ID!
  title: String
  rating: Int @join__field
}
union Item @join__type(graph: SHELF) @join__unionMember(graph: SHELF, member: "Book") = Book
""",
)


def test_fields_keys_requires_and_provides() -> None:
    assert build_query_graph(SHOP).print() == "\n".join(
        [
            "query -> Query/catalog",
            "query -> Query/shipping",
            "query -> Query/reviews",
            "Product/catalog -> .: name",
            "Product/catalog -> .: upc",
            "Product/catalog -> .: weight",
            "Product/catalog -> Product/catalog: key(upc)",
            "Product/catalog -> Product/shipping: key(upc)",
            "Product/reviews -> .: upc",
            "Product/reviews -> Product/catalog: key(upc)",
            "Product/reviews -> Product/shipping: key(upc)",
            "Product/reviews[Review.product] -> .: name",
            "Product/reviews[Review.product] -> .: upc",
            "Product/reviews[Review.product] -> Product/catalog: key(upc)",
            "Product/reviews[Review.product] -> Product/shipping: key(upc)",
            "Product/shipping -> .: shippingCost requires(weight)",
            "Product/shipping -> .: upc",
            "Product/shipping -> Product/catalog: key(upc)",
            "Product/shipping -> Product/shipping: key(upc)",
            "Query/catalog -> Product/catalog: product",
            "Query/reviews -> Review/reviews: topReviews",
            "Review/reviews -> .: stars",
            "Review/reviews -> Product/reviews[Review.product]: product",
        ]
    )


def test_interface_objects_downcasts_and_union_members() -> None:
    graph = build_query_graph(MEDIA)
    assert graph.print() == "\n".join(
        [
            "query -> Query/library",
            "query -> Query/ratings",
            "query -> Query/shelf",
            "Book/library -> .: id",
            "Book/library -> .: title",
            "Book/library -> Book/library: key(id)",
            "Book/library -> Book/shelf: key(id)",
            "Book/library -> Media/ratings: interface_object(id)",
            "Book/shelf -> .: id",
            "Book/shelf -> Book/library: key(id)",
            "Book/shelf -> Book/shelf: key(id)",
            "Book/shelf -> Media/ratings: interface_object(id)",
            "Item/shelf -> Book/shelf: ... on Book",
            "Media/library -> .: id",
            "Media/library -> .: title",
            "Media/library -> Book/library: ... on Book",
            "Media/library -> Media/library: key(id)",
            "Media/library -> Media/ratings: key(id)",
            "Media/library -> Movie/library: ... on Movie",
            "Media/ratings -> .: id",
            "Media/ratings -> .: rating",
            "Media/ratings -> Media/library: key(id)",
            "Media/ratings -> Media/ratings: key(id)",
            "Movie/library -> .: id",
            "Movie/library -> .: title",
            "Movie/library -> Media/ratings: interface_object(id)",
            "Movie/library -> Movie/library: key(id)",
            "Query/library -> Media/library: media",
            "Query/ratings -> Media/ratings: topRated",
            "Query/shelf -> Item/shelf: shelf",
        ]
    )


def test_lookups_answer_what_the_planner_asks() -> None:
    graph = build_query_graph(SHOP)
    shipping = Node("Product", "shipping")
    edge = graph.field_edge(shipping, "shippingCost")
    assert edge is not None
    assert [i.name for i in edge.conditions] == ["weight"]
    # `weight` is external in shipping: only the catalog answers it.
    assert graph.field_edge(shipping, "weight") is None
    assert [e.tail for e in graph.jumps(Node("Product", "reviews"))] == [
        Node("Product", "catalog"),
        Node("Product", "shipping"),
    ]
    # `resolvable: false` keys are never a jump's target.
    assert all(e.tail != Node("Product", "reviews") for e in graph.jumps(shipping))


def test_every_composite_type_has_a_node_per_subgraph() -> None:
    # Query, Product and Review: 3 + 3 + 1 nodes, and the provided copy of Product.
    assert len(build_query_graph(SHOP).nodes) == 8


def test_a_field_providing_its_own_type_ends_at_one_provided_copy() -> None:
    # `Track.next` provides the next track's title, and that track has a `next` of its own:
    # the copy's own `next` provides again, to the same copy, instead of nesting forever.
    graph = supergraph(
        "tracks charts",
        """
type Query @join__type(graph: TRACKS) @join__type(graph: CHARTS) {
  track: Track @join__field(graph: TRACKS)
}
type Track @join__type(graph: TRACKS, key: "id") @join__type(graph: CHARTS, key: "id") {
  id: ID!
  next: Track @join__field(graph: TRACKS, provides: "title")
  title: String @join__field(graph: TRACKS, external: true) @join__field(graph: CHARTS)
}
""",
    )
    lines = build_query_graph(graph).print().splitlines()
    assert [line for line in lines if line.endswith(": next")] == [
        "Track/tracks -> Track/tracks[Track.next]: next",
        "Track/tracks[Track.next] -> Track/tracks[Track.next]: next",
    ]
