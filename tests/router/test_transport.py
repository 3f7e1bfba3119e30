"""GraphQL-over-HTTP request parsing and media type negotiation, without a server."""

from __future__ import annotations

import pytest

from router.protocols import GRAPHQL_RESPONSE_JSON, HttpProblem, negotiate, read_get, read_post


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, "application/json"),
        ("*/*", "application/json"),
        ("application/json", "application/json"),
        ("application/graphql-response+json, application/json;q=0.9", GRAPHQL_RESPONSE_JSON),
        ("text/html, application/json;q=0.5", "application/json"),
    ],
)
def test_negotiation(accept: str | None, expected: str) -> None:
    assert negotiate(accept) == expected


def test_unacceptable_media_type_is_406() -> None:
    with pytest.raises(HttpProblem) as caught:
        negotiate("text/csv")
    assert caught.value.status == 406


def test_post_bodies() -> None:
    request = read_post(
        "application/json; charset=utf-8",
        b'{"query": "{ a }", "operationName": "Q", "variables": {"x": 1}}',
        batching=False,
    )
    assert not isinstance(request, list)
    assert (request.query, request.operation_name, request.variables) == ("{ a }", "Q", {"x": 1})
    batch = read_post(
        "application/json", b'[{"query": "{ a }"}, {"query": "{ b }"}]', batching=True
    )
    assert isinstance(batch, list)
    assert [r.query for r in batch] == ["{ a }", "{ b }"]


@pytest.mark.parametrize(
    ("content_type", "body", "status"),
    [
        ("text/plain", b'{"query": "{ a }"}', 415),
        ("application/json", b"{", 400),
        ("application/json", b'{"query": 1}', 400),
        ("application/json", b'{"query": "{ a }", "variables": [1]}', 400),
        ("application/json", b'[{"query": "{ a }"}]', 400),  # batching not enabled
        ("application/json", b"[]", 400),
    ],
)
def test_malformed_post_bodies(content_type: str, body: bytes, status: int) -> None:
    with pytest.raises(HttpProblem) as caught:
        read_post(content_type, body, batching=body == b"[]")
    assert caught.value.status == status


def test_get_parameters() -> None:
    request = read_get(
        b"query=query%20Q(%24id%3A%20ID!)%20%7B%20a%20%7D&variables=%7B%22id%22%3A%221%22%7D"
    )
    assert request.query == "query Q($id: ID!) { a }"
    assert request.variables == {"id": "1"}
    with pytest.raises(HttpProblem):
        read_get(b"query=%7B%20a%20%7D&variables=%7Bnot-json")
