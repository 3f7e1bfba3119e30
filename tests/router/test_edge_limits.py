"""Operation limits: each refuses the document over it, naming the limit, before validation
and before any subgraph is called; a document at the limit passes."""

from __future__ import annotations

import pytest

from router.edge.limits import OperationLimits
from router.execution.client import SubgraphClient
from router.execution.gateway import Gateway
from router.pipeline.outcome import Refused
from router.supergraph import parse_supergraph
from tests.router.supergraphs import bench_supergraph

LIMITS = OperationLimits(max_depth=4, max_aliases=3, max_root_fields=3, max_tokens=60, max_cost=40)


@pytest.fixture(scope="module")
def gateway() -> Gateway:
    # No subgraph URL at all: a refused document must never need one.
    return Gateway(parse_supergraph(bench_supergraph()), SubgraphClient({}), limits=LIMITS)


def _refused(gateway: Gateway, query: str) -> dict[str, object]:
    with pytest.raises(Refused) as caught:
        gateway.prepare(query, None)
    [error] = caught.value.errors
    assert error["extensions"]["code"] == "OPERATION_LIMIT_EXCEEDED"
    return error


def test_depth(gateway: Gateway) -> None:
    gateway.prepare("{ users { reviews { product { upc } } } }", None)  # depth 4
    error = _refused(gateway, "{ users { reviews { product { reviews { id } } } } }")
    assert error["message"] == "Operation depth 5 is over the limit of 4 (ROUTER_MAX_DEPTH)"
    assert error["extensions"] == {
        "code": "OPERATION_LIMIT_EXCEEDED",
        "limit": "depth",
        "value": 5,
        "maximum": 4,
    }


def test_depth_counts_through_fragments(gateway: Gateway) -> None:
    query = """
    query { users { ...R } }
    fragment R on User { reviews { product { ... on Product { reviews { id } } } } }
    """
    assert "depth" in str(_refused(gateway, query)["message"])


def test_aliases(gateway: Gateway) -> None:
    gateway.prepare("{ a: me { id } b: me { id } c: me { id } }", None)
    error = _refused(gateway, "{ a: me { id } b: me { id } c: me { id } d: me { i: id } }")
    assert "aliases 5 is over the limit of 3 (ROUTER_MAX_ALIASES)" in str(error["message"])


def test_root_fields(gateway: Gateway) -> None:
    error = _refused(gateway, "{ me { id } users { id } topProducts { upc } x: me { id } }")
    assert "root fields 4" in str(error["message"])


def test_tokens_stop_the_parser(gateway: Gateway) -> None:
    error = _refused(gateway, "{ me { " + "id " * 80 + "} }")
    assert "ROUTER_MAX_TOKENS" in str(error["message"])


def test_cost_multiplies_by_page_size(gateway: Gateway) -> None:
    gateway.prepare("{ topProducts(first: 5) { upc name } }", None)  # 1 + 5 * 2
    error = _refused(gateway, "{ topProducts(first: 30) { upc name } }")  # 1 + 30 * 2
    assert "cost 61 is over the limit of 40 (ROUTER_MAX_COST)" in str(error["message"])
    # A page size given by a variable counts as 20.
    error = _refused(gateway, "query($n: Int) { topProducts(first: $n) { upc name } }")
    assert "cost 41" in str(error["message"])


def test_fragment_cycles_do_not_hang_the_measure(gateway: Gateway) -> None:
    with pytest.raises(Refused) as caught:
        gateway.prepare(
            "{ me { ...A } } fragment A on User { ...B } fragment B on User { ...A }", None
        )
    assert caught.value.errors[0]["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


def test_field_suggestions_hidden_unless_asked_for() -> None:
    graph = parse_supergraph(bench_supergraph())
    quiet = Gateway(graph, SubgraphClient({}), suggestions=False)
    chatty = Gateway(graph, SubgraphClient({}), suggestions=True)
    for gateway, hinted in ((quiet, False), (chatty, True)):
        with pytest.raises(Refused) as caught:
            gateway.prepare("{ me { usernam } }", None)
        message = caught.value.errors[0]["message"]
        assert message.startswith("Cannot query field 'usernam' on type 'User'.")
        assert ("Did you mean" in message) is hinted


def test_a_huge_defer_document_is_refused_by_the_token_limit_before_any_parse(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """A 650 KB document under the body limit, with `@defer`: refused by the token count
    before the parser, the `@defer` split or validation ever see it."""
    import router.pipeline.document as document_stage

    seen: list[str] = []
    monkeypatch.setattr(document_stage, "split_deferred", lambda *a: seen.append("split"))
    monkeypatch.setattr(document_stage, "validate", lambda *a: seen.append("validate") or [])
    monkeypatch.setattr(document_stage, "parse", lambda *a, **k: seen.append("parse"))
    fields = " ".join(f"f{n}: upc" for n in range(60_000))
    query = "{ topProducts { ... @defer { " + fields + " } } }"
    assert 600_000 < len(query.encode()) < 1_000_000
    gateway = Gateway(parse_supergraph(bench_supergraph()), SubgraphClient({}))
    with pytest.raises(Refused) as caught:
        gateway.prepare(query, None)
    [error] = caught.value.errors
    assert error["extensions"]["limit"] == "tokens"
    assert seen == []


def _parser_tokens(document: str) -> int:
    from graphql.language import Lexer, Source, TokenKind

    lexer, count = Lexer(Source(document)), 0
    while lexer.advance().kind != TokenKind.EOF:
        count += 1
    return count


@pytest.mark.parametrize(
    "document",
    [
        "{ me { " + "id " * 4_995 + "} }",
        '# a comment { { {\nquery Q($a: [Int!]! = [1, -2.5e3, 3]) { f(s: "a\\"b }", '
        'b: """x { \\""" y""") { ...F } }\nfragment F on T { x }',
        "\ufeff{ a, b,,, c { d } }",
    ],
)
def test_the_token_count_before_parsing_agrees_with_the_parser(document: str) -> None:
    from graphql import get_introspection_query

    from router.edge.limits import too_many_tokens

    for text in (document, get_introspection_query(descriptions=True)):
        tokens = _parser_tokens(text)
        limits = OperationLimits(max_tokens=tokens)
        assert not too_many_tokens(text, limits)
        # Over the limit by one (checked only where the document is longer than the limit).
        if len(text) > tokens - 1:
            assert too_many_tokens(text, OperationLimits(max_tokens=tokens - 1))
