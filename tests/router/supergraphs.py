"""Hand-written supergraph SDLs (standard composition output format) shared by router tests."""

from __future__ import annotations

from pathlib import Path

FIXTURES = Path(__file__).parent / "fixtures"

JOIN_HEADER = """
schema
  @link(url: "https://specs.apollo.dev/link/v1.0")
  @link(url: "https://specs.apollo.dev/join/v0.3", for: EXECUTION)
  @link(url: "https://specs.apollo.dev/inaccessible/v0.2", for: SECURITY)
  @link(url: "https://specs.apollo.dev/tag/v0.3")
{
  query: Query
  mutation: Mutation
}

directive @inaccessible on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION
directive @tag(name: String!) repeatable on FIELD_DEFINITION | OBJECT | INTERFACE | UNION | ARGUMENT_DEFINITION | SCALAR | ENUM | ENUM_VALUE | INPUT_OBJECT | INPUT_FIELD_DEFINITION | SCHEMA
directive @join__enumValue(graph: join__Graph!) repeatable on ENUM_VALUE
directive @join__field(graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet, type: String, external: Boolean, override: String, usedOverridden: Boolean) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION
directive @join__graph(name: String!, url: String!) on ENUM_VALUE
directive @join__implements(graph: join__Graph!, interface: String!) repeatable on OBJECT | INTERFACE
directive @join__type(graph: join__Graph!, key: join__FieldSet, extension: Boolean! = false, resolvable: Boolean! = true, isInterfaceObject: Boolean! = false) repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR
directive @join__unionMember(graph: join__Graph!, member: String!) repeatable on UNION
directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA
scalar join__FieldSet
scalar link__Import
enum link__Purpose { SECURITY EXECUTION }
"""

# A shop: products (catalog), pricing, stock, reviews, accounts. Exercises composite and
# multiple keys, @shareable, @provides, @requires (nested and with arguments), @override,
# interfaces and unions across subgraphs, @inaccessible, enums, mutations.
SHOP = (
    JOIN_HEADER
    + """
enum join__Graph {
  ACCOUNTS @join__graph(name: "accounts", url: "http://accounts/graphql")
  CATALOG @join__graph(name: "catalog", url: "http://catalog/graphql")
  PRICING @join__graph(name: "pricing", url: "http://pricing/graphql")
  REVIEWS @join__graph(name: "reviews", url: "http://reviews/graphql")
  STOCK @join__graph(name: "stock", url: "http://stock/graphql")
}

type Query
  @join__type(graph: ACCOUNTS) @join__type(graph: CATALOG) @join__type(graph: PRICING)
  @join__type(graph: REVIEWS) @join__type(graph: STOCK)
{
  me: User @join__field(graph: ACCOUNTS)
  users: [User!]! @join__field(graph: ACCOUNTS)
  product(sku: String!): Product @join__field(graph: CATALOG)
  products(first: Int = 10): [Product!]! @join__field(graph: CATALOG)
  search(text: String!): [SearchResult!]! @join__field(graph: CATALOG)
  media: [Media!]! @join__field(graph: CATALOG)
  topReviews: [Review!]! @join__field(graph: REVIEWS)
  matrix: [[Product]] @join__field(graph: CATALOG)
  secret: String @inaccessible @join__field(graph: ACCOUNTS)
}

type Mutation @join__type(graph: ACCOUNTS) @join__type(graph: REVIEWS) {
  login(name: String!): User @join__field(graph: ACCOUNTS)
  addReview(sku: String!, body: String!): Review @join__field(graph: REVIEWS)
  logout: Boolean @join__field(graph: ACCOUNTS)
}

type User
  @join__type(graph: ACCOUNTS, key: "id")
  @join__type(graph: REVIEWS, key: "id")
  @join__type(graph: CATALOG, key: "id", resolvable: false)
{
  id: ID!
  name: String @join__field(graph: ACCOUNTS) @join__field(graph: REVIEWS, external: true)
  email: String @join__field(graph: ACCOUNTS) @tag(name: "private")
  internalNote: String @inaccessible @join__field(graph: ACCOUNTS)
  reviews: [Review!]! @join__field(graph: REVIEWS)
}

type Product
  @join__type(graph: CATALOG, key: "sku")
  @join__type(graph: CATALOG, key: "id")
  @join__type(graph: PRICING, key: "sku")
  @join__type(graph: STOCK, key: "id warehouse { code }")
  @join__type(graph: REVIEWS, key: "id")
{
  id: ID!
  sku: String! @join__field(graph: CATALOG) @join__field(graph: PRICING)
  warehouse: Warehouse @join__field(graph: CATALOG) @join__field(graph: STOCK)
  title: String @join__field(graph: CATALOG, override: "pricing") @join__field(graph: PRICING, usedOverridden: true)
  category: Category @join__field(graph: CATALOG)
  price(currency: String = "EUR"): Money
    @join__field(graph: PRICING)
    @join__field(graph: STOCK, external: true)
  weight: Int @join__field(graph: CATALOG) @join__field(graph: STOCK, external: true)
  dimensions: Dimensions @join__field(graph: CATALOG) @join__field(graph: STOCK, external: true)
  inStock: Boolean @join__field(graph: STOCK)
  shippingCost: Int @join__field(graph: STOCK, requires: "weight dimensions { width height }")
  insurance: Int @join__field(graph: STOCK, requires: "price(currency: \\"EUR\\") { amount }")
  reviews: [Review!]! @join__field(graph: REVIEWS)
  reviewCount: Int @join__field(graph: REVIEWS)
}

type Warehouse @join__type(graph: CATALOG) @join__type(graph: STOCK) {
  code: String!
  city: String @join__field(graph: STOCK)
}

type Dimensions @join__type(graph: CATALOG) @join__type(graph: STOCK) {
  width: Int
  height: Int
}

type Money @join__type(graph: PRICING) @join__type(graph: STOCK) {
  amount: Int!
  currency: String!
}

enum Category @join__type(graph: CATALOG) {
  BOOK @join__enumValue(graph: CATALOG)
  GAME @join__enumValue(graph: CATALOG)
  HIDDEN @inaccessible @join__enumValue(graph: CATALOG)
}

type Review @join__type(graph: REVIEWS, key: "id") {
  id: ID!
  body: String
  rating: Int
  author: User @join__field(graph: REVIEWS, provides: "name")
  product: Product
}

union SearchResult @join__type(graph: CATALOG) @join__unionMember(graph: CATALOG, member: "Product") @join__unionMember(graph: CATALOG, member: "User") = Product | User

interface Media @join__type(graph: CATALOG) {
  id: ID!
  title: String
}

type Book implements Media
  @join__implements(graph: CATALOG, interface: "Media")
  @join__type(graph: CATALOG, key: "id")
  @join__type(graph: REVIEWS, key: "id")
{
  id: ID!
  title: String @join__field(graph: CATALOG)
  pages: Int @join__field(graph: CATALOG)
  reviewCount: Int @join__field(graph: REVIEWS)
}

type Film implements Media
  @join__implements(graph: CATALOG, interface: "Media")
  @join__type(graph: CATALOG, key: "id")
{
  id: ID!
  title: String
  minutes: Int
}
"""
)


def bench_supergraph() -> str:
    return (FIXTURES / "supergraph.graphql").read_text()


# A catalog subgraph with the `Media` entity interface, and a ratings subgraph that extends
# every Media through `@interfaceObject` without knowing the implementations.
MEDIA = (
    JOIN_HEADER.replace("  mutation: Mutation\n", "")
    + """
enum join__Graph {
  CATALOG @join__graph(name: "catalog", url: "http://catalog/graphql")
  RATINGS @join__graph(name: "ratings", url: "http://ratings/graphql")
}

type Query @join__type(graph: CATALOG) @join__type(graph: RATINGS) {
  library: [Media!]! @join__field(graph: CATALOG)
  topRated: [Media!]! @join__field(graph: RATINGS)
}

interface Media
  @join__type(graph: CATALOG, key: "id")
  @join__type(graph: RATINGS, key: "id", isInterfaceObject: true)
{
  id: ID!
  title: String @join__field(graph: CATALOG)
  stars: Int @join__field(graph: RATINGS)
}

type Book implements Media
  @join__implements(graph: CATALOG, interface: "Media")
  @join__type(graph: CATALOG, key: "id")
{
  id: ID!
  title: String
  pages: Int
  stars: Int @join__field
}

type Film implements Media
  @join__implements(graph: CATALOG, interface: "Media")
  @join__type(graph: CATALOG, key: "id")
{
  id: ID!
  title: String
  minutes: Int
  stars: Int @join__field
}
"""
)


# Prices depend on the currency of the shelf an item is shown on (`@context`/`@fromContext`).
CONTEXT = """
schema
  @link(url: "https://specs.apollo.dev/link/v1.0")
  @link(url: "https://specs.apollo.dev/join/v0.5", for: EXECUTION)
  @link(url: "https://specs.apollo.dev/context/v0.1")
{
  query: Query
}

directive @link(url: String, as: String, for: link__Purpose, import: [link__Import]) repeatable on SCHEMA
directive @join__graph(name: String!, url: String!) on ENUM_VALUE
directive @join__type(graph: join__Graph!, key: join__FieldSet, extension: Boolean! = false, resolvable: Boolean! = true, isInterfaceObject: Boolean! = false) repeatable on OBJECT | INTERFACE | UNION | ENUM | INPUT_OBJECT | SCALAR
directive @join__field(graph: join__Graph, requires: join__FieldSet, provides: join__FieldSet, type: String, external: Boolean, override: String, usedOverridden: Boolean, overrideLabel: String, contextArguments: [join__ContextArgument!]) repeatable on FIELD_DEFINITION | INPUT_FIELD_DEFINITION
directive @context(name: String!) repeatable on INTERFACE | OBJECT | UNION
directive @context__fromContext(field: String) on ARGUMENT_DEFINITION
enum link__Purpose { SECURITY EXECUTION }
scalar link__Import
scalar join__FieldSet
scalar join__FieldValue
scalar context__context
input join__ContextArgument { name: String! type: String! context: String! selection: join__FieldValue! }

enum join__Graph {
  PRICES @join__graph(name: "prices", url: "http://prices/graphql")
  SHELF @join__graph(name: "shelf", url: "http://shelf/graphql")
}

type Query @join__type(graph: PRICES) @join__type(graph: SHELF) {
  shelves: [Shelf!]! @join__field(graph: SHELF)
}

type Shelf @join__type(graph: SHELF, key: "id") @context(name: "shelf__market") {
  id: ID!
  currency: String!
  items: [Item!]!
}

type Item @join__type(graph: PRICES, key: "sku") @join__type(graph: SHELF, key: "sku") {
  sku: ID!
  price: Int! @join__field(graph: PRICES, contextArguments: [{context: "shelf__market", name: "currency", type: "String!", selection: "{ currency }"}])
}
"""
