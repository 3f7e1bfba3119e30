"""Subscription planning (pure, printed plans), per-client mailboxes and connection limits."""

from __future__ import annotations

import asyncio

import pytest
from graphql import build_schema

from router.edge.limits import OperationLimits
from router.pipeline.document import DocumentRules, prepare_document
from router.pipeline.outcome import Refused
from router.protocols.realtime import ConnectionLimits
from router.subscriptions import Ended, Mailbox, SlowConsumer, UpstreamEvent, UpstreamKey
from router.supergraph import parse_supergraph
from tests.router.supergraphs import SHOP

SUBSCRIBING_SHOP = SHOP.replace(
    "  mutation: Mutation\n", "  mutation: Mutation\n  subscription: Subscription\n"
) + (
    "\ntype Subscription @join__type(graph: REVIEWS) "
    "{ reviewAdded(sku: String!): Review @join__field(graph: REVIEWS) }\n"
)

# `author.name` is provided by reviews; `email` needs accounts, the product fields catalog and
# then stock (its key needs the warehouse).
EXPECTED_PLAN = """\
Subscription {
  Primary: {
    Fetch(service: "reviews") {
      subscription New__reviews__0($sku: String!) {
        reviewAdded(sku: $sku) {
          body
          author {
            name
            __typename
            id
          }
          product {
            __typename
            id
          }
        }
      }
    }
  },
  Rest: {
    Sequence {
      Parallel {
        Flatten(path: "reviewAdded.author") {
          Fetch(service: "accounts") {
            {
              ... on User {
                __typename
                id
              }
            } =>
            query New__accounts__1($representations: [_Any!]!) {
              _entities(representations: $representations) {
                ... on User {
                  email
                }
              }
            }
          }
        },
        Flatten(path: "reviewAdded.product") {
          Fetch(service: "catalog") {
            {
              ... on Product {
                __typename
                id
              }
            } =>
            query New__catalog__2($representations: [_Any!]!) {
              _entities(representations: $representations) {
                ... on Product {
                  title
                  warehouse {
                    code
                  }
                }
              }
            }
          }
        }
      },
      Flatten(path: "reviewAdded.product") {
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
          query New__stock__3($representations: [_Any!]!) {
            _entities(representations: $representations) {
              ... on Product {
                inStock
              }
            }
          }
        }
      }
    }
  }
}"""


def _prepare(query: str):  # type: ignore[no-untyped-def]
    supergraph = parse_supergraph(SUBSCRIBING_SHOP)
    rules = DocumentRules(OperationLimits(), suggestions=True)
    return prepare_document(supergraph, build_schema(supergraph.api_sdl), rules, query, None)


def test_root_field_goes_upstream_and_other_subgraphs_fields_are_fetched_per_event() -> None:
    prepared = _prepare(
        "subscription New($sku: String!) { reviewAdded(sku: $sku) "
        "{ body author { name email } product { title inStock } } }"
    )
    assert prepared.subscription.primary.subgraph == "reviews"
    assert prepared.subscription.primary.operation_kind == "subscription"
    assert prepared.subscription.primary.variable_usages == ("sku",)
    assert prepared.subscription.print() == EXPECTED_PLAN
    assert prepared.subscription.per_event is not None
    assert prepared.subscription.per_event.kind == "query"


def test_a_subscription_served_by_its_subgraph_alone_has_nothing_to_run_per_event() -> None:
    prepared = _prepare('subscription { reviewAdded(sku: "a") { body author { name } } }')
    assert prepared.subscription.per_event is None
    assert "Rest" not in prepared.subscription.print()


@pytest.mark.parametrize(
    ("query", "code"),
    [
        ("subscription { reviewAdded(sku: 1) { nope } }", "GRAPHQL_VALIDATION_FAILED"),
        ("subscription {", "GRAPHQL_PARSE_FAILED"),
    ],
)
def test_subscriptions_that_cannot_run_are_refused_with_a_code(query: str, code: str) -> None:
    with pytest.raises(Refused) as caught:
        _prepare(query)
    assert caught.value.errors[0]["extensions"] == {"code": code}


async def test_a_mailbox_overflows_once_and_then_refuses_everything() -> None:
    box = Mailbox(2)
    overflowed: list[bool] = []
    box.on_overflow = lambda: overflowed.append(True)
    assert box.put(UpstreamEvent({"n": 1}))
    assert box.put(UpstreamEvent({"n": 2}))
    assert not box.put(UpstreamEvent({"n": 3}))
    assert not box.put(UpstreamEvent({"n": 4}))
    assert overflowed == [True]
    with pytest.raises(SlowConsumer):
        await box.get()


async def test_a_mailbox_delivers_in_order_and_a_cut_drops_what_waits() -> None:
    box = Mailbox(10)
    box.put(UpstreamEvent({"n": 1}))
    assert (await box.get()).payload == {"n": 1}  # type: ignore[union-attr]
    waiting = asyncio.create_task(box.get())
    await asyncio.sleep(0)
    box.put(UpstreamEvent({"n": 2}))
    assert (await asyncio.wait_for(waiting, 5)).payload == {"n": 2}  # type: ignore[union-attr]
    box.put(UpstreamEvent({"n": 3}))
    box.cut(Ended([{"message": "gone"}]))
    assert await box.get() == Ended([{"message": "gone"}])


def test_upstream_keys_ignore_variable_order_and_separate_sessions() -> None:
    one = UpstreamKey.of("user", "subscription { a }", {"a": 1, "b": 2}, "s1")
    assert one == UpstreamKey.of("user", "subscription { a }", {"b": 2, "a": 1}, "s1")
    assert one != UpstreamKey.of("user", "subscription { a }", {"a": 1, "b": 2}, "s2")
    assert UpstreamKey.of("user", "x", {}, None).viewer == ""


def test_connection_limits_count_per_client_and_in_total() -> None:
    limits = ConnectionLimits(total=3, per_client=2)
    assert limits.acquire("a") is None
    assert limits.acquire("a") is None
    assert limits.acquire("a") == "Too many subscription connections from this client"
    assert limits.acquire("b") is None
    assert limits.acquire("c") is not None  # the total is reached
    limits.release("a")
    assert limits.acquire("c") is None
    assert limits.open == 3


def test_the_edge_operation_limits_hold_for_subscriptions() -> None:
    supergraph = parse_supergraph(SUBSCRIBING_SHOP)
    schema = build_schema(supergraph.api_sdl)
    deep = 'subscription { reviewAdded(sku: "a") { product { category { name } } } }'
    with pytest.raises(Refused) as caught:
        prepare_document(
            supergraph, schema, DocumentRules(OperationLimits(max_depth=2), True), deep, None
        )
    assert caught.value.errors[0]["extensions"]["code"] == "OPERATION_LIMIT_EXCEEDED"
    with pytest.raises(Refused) as caught:
        prepare_document(
            supergraph, schema, DocumentRules(OperationLimits(max_tokens=10), True), deep, None
        )
    assert caught.value.errors[0]["extensions"]["limit"] == "tokens"
