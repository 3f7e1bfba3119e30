"""Query planner snapshots: supergraph + operation -> printed plan, one per federation feature."""

from __future__ import annotations

import pytest
from graphql import parse

from router.planning import PlanningError, normalize, plan_operation, print_plan
from router.supergraph import parse_supergraph
from tests.router.supergraphs import CONTEXT, FIXTURES, MEDIA, SHOP, bench_supergraph

SHOP_SUPERGRAPH = parse_supergraph(SHOP)


def plan_text(supergraph_sdl: str | None, query: str, operation_name: str | None = None) -> str:
    supergraph = SHOP_SUPERGRAPH if supergraph_sdl is None else parse_supergraph(supergraph_sdl)
    return print_plan(plan_operation(supergraph, normalize(parse(query), operation_name)))


def test_root_fields_split_across_subgraphs_with_aliases() -> None:
    query = "{ me { name } secondMe: me { id } products(first: 2) { sku } }"
    assert (
        plan_text(None, query)
        == """\
QueryPlan {
  Parallel {
    Fetch(service: "accounts") {
      {
        me {
          name
        }
        secondMe: me {
          id
        }
      }
    },
    Fetch(service: "catalog") {
      {
        products(first: 2) {
          sku
        }
      }
    }
  }
}"""
    )


def test_provides_used_and_entity_jump_by_the_key_the_parent_has() -> None:
    query = "{ topReviews { author { id name } product { sku title } } }"
    assert (
        plan_text(None, query)
        == """\
QueryPlan {
  Sequence {
    Fetch(service: "reviews") {
      {
        topReviews {
          author {
            id
            name
          }
          product {
            __typename
            id
          }
        }
      }
    },
    Flatten(path: "topReviews.@.product") {
      Fetch(service: "catalog") {
        {
          ... on Product {
            __typename
            id
          }
        } =>
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Product {
              sku
              title
            }
          }
        }
      }
    }
  }
}"""
    )


def test_requires_nested_fields_composite_key_value_type_and_arguments() -> None:
    query = '{ products { title shippingCost inStock price(currency: "DKK") { amount } eur: price { amount } warehouse { city } } }'
    assert (
        plan_text(None, query)
        == """\
QueryPlan {
  Sequence {
    Fetch(service: "catalog") {
      {
        products {
          title
          __typename
          id
          warehouse {
            code
          }
          weight
          dimensions {
            width
            height
          }
          sku
        }
      }
    },
    Parallel {
      Flatten(path: "products.@") {
        Fetch(service: "stock") {
          {
            ... on Product {
              __typename
              id
              warehouse {
                code
              }
              weight
              dimensions {
                width
                height
              }
            }
          } =>
          query ($representations: [_Any!]!) {
            _entities(representations: $representations) {
              ... on Product {
                shippingCost
                inStock
                warehouse {
                  city
                }
              }
            }
          }
        }
      },
      Flatten(path: "products.@") {
        Fetch(service: "pricing") {
          {
            ... on Product {
              __typename
              sku
            }
          } =>
          query ($representations: [_Any!]!) {
            _entities(representations: $representations) {
              ... on Product {
                price(currency: "DKK") {
                  amount
                }
                eur: price {
                  amount
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


def test_key_not_available_in_parent_is_fetched_first() -> None:
    query = "{ users { reviews { product { inStock title } } } }"
    assert (
        plan_text(None, query)
        == """\
QueryPlan {
  Sequence {
    Fetch(service: "accounts") {
      {
        users {
          __typename
          id
        }
      }
    },
    Flatten(path: "users.@") {
      Fetch(service: "reviews") {
        {
          ... on User {
            __typename
            id
          }
        } =>
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on User {
              reviews {
                product {
                  __typename
                  id
                }
              }
            }
          }
        }
      }
    },
    Flatten(path: "users.@.reviews.@.product") {
      Fetch(service: "catalog") {
        {
          ... on Product {
            __typename
            id
          }
        } =>
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Product {
              warehouse {
                code
              }
              title
            }
          }
        }
      }
    },
    Flatten(path: "users.@.reviews.@.product") {
      Fetch(service: "stock") {
        {
          ... on Product {
            __typename
            id
            warehouse {
              code
            }
          }
        } =>
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Product {
              inStock
            }
          }
        }
      }
    }
  }
}"""
    )


def test_unions_interfaces_and_conditional_fetches() -> None:
    query = 'query($x: Boolean!) { search(text: "a") { ... on Product { sku reviewCount } ... on User { name reviews @include(if: $x) { body author { name email } } } } media { id ... on Book { reviewCount } } }'
    assert (
        plan_text(None, query)
        == """\
QueryPlan {
  Sequence {
    Fetch(service: "catalog") {
      {
        search(text: "a") {
          __typename
          ... on Product {
            sku
            __typename
            id
          }
          ... on User {
            __typename
            id
          }
        }
        media {
          __typename
          ... on Book {
            id
            __typename
          }
          ... on Film {
            id
          }
        }
      }
    },
    Parallel {
      Flatten(path: "search.@") {
        Fetch(service: "reviews") {
          {
            ... on Product {
              __typename
              id
            }
          } =>
          query ($representations: [_Any!]!) {
            _entities(representations: $representations) {
              ... on Product {
                reviewCount
              }
            }
          }
        }
      },
      Flatten(path: "search.@") {
        Fetch(service: "accounts") {
          {
            ... on User {
              __typename
              id
            }
          } =>
          query ($representations: [_Any!]!) {
            _entities(representations: $representations) {
              ... on User {
                name
              }
            }
          }
        }
      },
      Include(if: $x) {
        Flatten(path: "search.@") {
          Fetch(service: "reviews") {
            {
              ... on User {
                __typename
                id
              }
            } =>
            query ($representations: [_Any!]!, $x: Boolean!) {
              _entities(representations: $representations) {
                ... on User {
                  reviews @include(if: $x) {
                    body
                    author {
                      name
                      __typename
                      id
                    }
                  }
                }
              }
            }
          }
        }
      },
      Flatten(path: "media.@") {
        Fetch(service: "reviews") {
          {
            ... on Book {
              __typename
              id
            }
          } =>
          query ($representations: [_Any!]!) {
            _entities(representations: $representations) {
              ... on Book {
                reviewCount
              }
            }
          }
        }
      }
    },
    Include(if: $x) {
      Flatten(path: "search.@.reviews.@.author") {
        Fetch(service: "accounts") {
          {
            ... on User {
              __typename
              id
            }
          } =>
          query ($representations: [_Any!]!) {
            _entities(representations: $representations) {
              ... on User {
                email
              }
            }
          }
        }
      }
    }
  }
}"""
    )


def test_skip_on_fragment_and_named_fragments() -> None:
    query = 'query($skip: Boolean!) { product(sku: "1") { ... on Product @skip(if: $skip) { price { amount } } ...F } } fragment F on Product { sku reviewCount }'
    assert (
        plan_text(None, query)
        == """\
QueryPlan {
  Sequence {
    Fetch(service: "catalog") {
      query ($skip: Boolean!) {
        product(sku: "1") {
          ... on Product @skip(if: $skip) {
            __typename
            sku
          }
          sku
          __typename
          id
        }
      }
    },
    Parallel {
      Skip(if: $skip) {
        Flatten(path: "product") {
          Fetch(service: "pricing") {
            {
              ... on Product {
                __typename
                sku
              }
            } =>
            query ($representations: [_Any!]!) {
              _entities(representations: $representations) {
                ... on Product {
                  price {
                    amount
                  }
                }
              }
            }
          }
        }
      },
      Flatten(path: "product") {
        Fetch(service: "reviews") {
          {
            ... on Product {
              __typename
              id
            }
          } =>
          query ($representations: [_Any!]!) {
            _entities(representations: $representations) {
              ... on Product {
                reviewCount
              }
            }
          }
        }
      }
    }
  }
}"""
    )


def test_mutations_run_strictly_in_order() -> None:
    query = 'mutation { login(name: "a") { id name reviews { body } } addReview(sku: "1", body: "b") { id author { name email } } logout }'
    assert (
        plan_text(None, query)
        == """\
QueryPlan {
  Sequence {
    Fetch(service: "accounts") {
      mutation {
        login(name: "a") {
          id
          name
          __typename
        }
      }
    },
    Flatten(path: "login") {
      Fetch(service: "reviews") {
        {
          ... on User {
            __typename
            id
          }
        } =>
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on User {
              reviews {
                body
              }
            }
          }
        }
      }
    },
    Fetch(service: "reviews") {
      mutation {
        addReview(sku: "1", body: "b") {
          id
          author {
            name
            __typename
            id
          }
        }
      }
    },
    Flatten(path: "addReview.author") {
      Fetch(service: "accounts") {
        {
          ... on User {
            __typename
            id
          }
        } =>
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on User {
              email
            }
          }
        }
      }
    },
    Fetch(service: "accounts") {
      mutation {
        logout
      }
    }
  }
}"""
    )


def test_lists_of_lists() -> None:
    query = "{ matrix { sku inStock } }"
    assert (
        plan_text(None, query)
        == """\
QueryPlan {
  Sequence {
    Fetch(service: "catalog") {
      {
        matrix {
          sku
          __typename
          id
          warehouse {
            code
          }
        }
      }
    },
    Flatten(path: "matrix.@.@") {
      Fetch(service: "stock") {
        {
          ... on Product {
            __typename
            id
            warehouse {
              code
            }
          }
        } =>
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Product {
              inStock
            }
          }
        }
      }
    }
  }
}"""
    )


def test_variables_are_declared_in_the_fetches_that_use_them() -> None:
    query = 'query Q($cur: String = "USD", $n: Int) { products(first: $n) { price(currency: $cur) { amount currency } } }'
    assert (
        plan_text(None, query)
        == """\
QueryPlan {
  Sequence {
    Fetch(service: "catalog") {
      query Q__catalog__0($n: Int) {
        products(first: $n) {
          __typename
          sku
        }
      }
    },
    Flatten(path: "products.@") {
      Fetch(service: "pricing") {
        {
          ... on Product {
            __typename
            sku
          }
        } =>
        query Q__pricing__1($representations: [_Any!]!, $cur: String = "USD") {
          _entities(representations: $representations) {
            ... on Product {
              price(currency: $cur) {
                amount
                currency
              }
            }
          }
        }
      }
    }
  }
}"""
    )


def test_bench_workload_plan_matches_snapshot() -> None:
    query = (FIXTURES / "query.graphql").read_text()
    expected = (FIXTURES / "query-plan.txt").read_text().rstrip("\n")
    assert plan_text(bench_supergraph(), query, "TestQuery") == expected


def test_unsatisfiable_field_fails_with_a_clear_error() -> None:
    sdl = SHOP.replace(
        "  reviewCount: Int @join__field(graph: REVIEWS)\n}\n\ntype Warehouse",
        "  reviewCount: Int @join__field(graph: REVIEWS)\n"
        "  secretCode: String @join__field(graph: ACCOUNTS)\n}\n\ntype Warehouse",
    )
    with pytest.raises(PlanningError, match="secretCode"):
        plan_text(sdl, "{ products { secretCode } }")


def test_subscriptions_are_planned_by_their_own_entry_point() -> None:
    with pytest.raises(PlanningError, match="plan_subscription"):
        plan_operation(
            SHOP_SUPERGRAPH,
            normalize(parse("subscription { me { id } }"), None),
        )


def test_plan_cache_is_bounded_and_counts_hits_and_misses() -> None:
    from router.planning import LruCache

    cache: LruCache[tuple[str, str], str] = LruCache(max_size=2)
    built: list[str] = []

    def build(name: str) -> str:
        built.append(name)
        return name.upper()

    assert cache.get_or_build(("h", "a"), lambda: build("a")) == "A"
    assert cache.get_or_build(("h", "a"), lambda: build("a")) == "A"
    cache.get_or_build(("h", "b"), lambda: build("b"))
    cache.get_or_build(("h", "c"), lambda: build("c"))  # evicts "a", the least recently used
    cache.get_or_build(("h", "a"), lambda: build("a"))
    assert built == ["a", "b", "c", "a"]
    assert (cache.hits, cache.misses, len(cache)) == (1, 4, 2)


def test_requires_with_arguments_is_fetched_under_its_own_alias() -> None:
    query = "{ products { insurance price { amount currency } } }"
    assert (
        plan_text(None, query)
        == """\
QueryPlan {
  Sequence {
    Fetch(service: "catalog") {
      {
        products {
          __typename
          id
          warehouse {
            code
          }
          sku
        }
      }
    },
    Flatten(path: "products.@") {
      Fetch(service: "pricing") {
        {
          ... on Product {
            __typename
            sku
          }
        } =>
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Product {
              _required_price_5608dd58: price(currency: "EUR") {
                amount
              }
              price {
                amount
                currency
              }
            }
          }
        }
      }
    },
    Flatten(path: "products.@") {
      Fetch(service: "stock") {
        {
          ... on Product {
            __typename
            id
            warehouse {
              code
            }
            _required_price_5608dd58: price(currency: "EUR") {
              amount
            }
          }
        } =>
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Product {
              insurance
            }
          }
        }
      }
    }
  }
}"""
    )


def test_interface_object_fields_use_the_interface_typename() -> None:
    query = "{ library { title stars ... on Book { pages } } }"
    assert (
        plan_text(MEDIA, query)
        == """\
QueryPlan {
  Sequence {
    Fetch(service: "catalog") {
      {
        library {
          __typename
          ... on Book {
            title
            __typename
            id
            pages
          }
          ... on Film {
            title
            __typename
            id
          }
        }
      }
    },
    Flatten(path: "library.@") {
      Fetch(service: "ratings") {
        rewrite: Book.__typename = Media
        rewrite: Film.__typename = Media
        {
          ... on Book {
            __typename
            id
          }
          ... on Film {
            __typename
            id
          }
        } =>
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Media {
              stars
            }
          }
        }
      }
    }
  }
}"""
    )


def test_interface_object_values_get_their_concrete_type_first() -> None:
    query = "{ topRated { __typename stars title ... on Film { minutes } } }"
    assert (
        plan_text(MEDIA, query)
        == """\
QueryPlan {
  Sequence {
    Fetch(service: "ratings") {
      {
        topRated {
          __typename
          id
        }
      }
    },
    Flatten(path: "topRated.@") {
      Fetch(service: "catalog") {
        answer: __typename refines the object's type
        {
          ... on Media {
            __typename
            id
          }
        } =>
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Media {
              __typename
              ... on Book {
                __typename
                id
                title
              }
              ... on Film {
                __typename
                id
                title
                minutes
              }
            }
          }
        }
      }
    },
    Flatten(path: "topRated.@") {
      Fetch(service: "ratings") {
        rewrite: Book.__typename = Media
        rewrite: Film.__typename = Media
        {
          ... on Book {
            __typename
            id
          }
          ... on Film {
            __typename
            id
          }
        } =>
        query ($representations: [_Any!]!) {
          _entities(representations: $representations) {
            ... on Media {
              stars
            }
          }
        }
      }
    }
  }
}"""
    )


def test_interface_partially_implemented_per_subgraph() -> None:
    sdl = (
        SHOP.replace(
            "type Film implements Media\n",
            'type Film implements Media\n  @join__implements(graph: REVIEWS, interface: "Media")\n',
        )
        .replace(
            "interface Media @join__type(graph: CATALOG) {",
            "interface Media @join__type(graph: CATALOG) @join__type(graph: REVIEWS) {",
        )
        .replace(
            '  @join__type(graph: CATALOG, key: "id")\n{\n  id: ID!\n  title: String\n  minutes: Int\n}',
            '  @join__type(graph: CATALOG, key: "id")\n  @join__type(graph: REVIEWS, key: "id")\n'
            "{\n  id: ID!\n  title: String @join__field(graph: CATALOG)\n  minutes: Int @join__field(graph: CATALOG)\n}",
        )
        .replace(
            "  topReviews: [Review!]! @join__field(graph: REVIEWS)",
            "  topReviews: [Review!]! @join__field(graph: REVIEWS)\n  featured: Media @join__field(graph: REVIEWS)",
        )
    )
    plan = plan_text(sdl, "{ featured { id title ... on Book { pages } ... on Film { minutes } } }")
    # The reviews subgraph only knows Film as a Media: no Book fragment is sent to it.
    assert "... on Book" not in plan
    assert 'Flatten(path: "featured")' in plan
    assert plan.count('Fetch(service: "catalog")') == 1


def test_from_context_values_are_fetched_on_the_ancestor_and_passed_as_variables() -> None:
    query = "{ shelves { id items { sku price } } }"
    assert (
        plan_text(CONTEXT, query)
        == """\
QueryPlan {
  Sequence {
    Fetch(service: "shelf") {
      {
        shelves {
          id
          items {
            sku
            __typename
          }
          currency
        }
      }
    },
    Flatten(path: "shelves.@.items.@") {
      Fetch(service: "prices") {
        context: $contextualArgument_0 = { currency } at "shelves.@"
        {
          ... on Item {
            __typename
            sku
          }
        } =>
        query ($representations: [_Any!]!, $contextualArgument_0: String!) {
          _entities(representations: $representations) {
            ... on Item {
              price(currency: $contextualArgument_0)
            }
          }
        }
      }
    }
  }
}"""
    )
