"""The user subgraph's edge: bad strings and malformed IDs are BAD_USER_INPUT before any SQL."""

from __future__ import annotations

import json
from typing import Any

from core.input_checks import missing_rules
from subgraphs.user.schema import build_schema
from subgraphs.user.validation import INPUT_RULES
from tests.subgraphs.user.conftest import Territories, UserApp

SEARCH = "query($q: String!) { searchUsers(query: $q) { totalCount } }"
PROFILE = "query($id: ID!) { profile(userId: $id) { about } }"
UPDATE = "mutation($input: UpdateProfileInput!) { updateProfile(input: $input) { about } }"


async def _post(user_app: UserApp, token: str, query: str, variables: dict[str, Any]) -> Any:
    response = await user_app.http.post(
        "/graphql",
        content=json.dumps({"query": query, "variables": variables}),
        headers={"content-type": "application/json", "authorization": f"Bearer {token}"},
    )
    assert response.status_code == 200, response.text
    return response.json()


async def test_bad_strings_and_ids_are_refused_at_the_edge(
    user_app: UserApp, territories: Territories
) -> None:
    who = await user_app.people.create(territories.home.code)
    probes = [
        (SEARCH, {"q": "al\x00ice"}, "query"),
        (SEARCH, {"q": "al\udfffice"}, "query"),
        (SEARCH, {"q": "a" * 101}, "query"),
        (PROFILE, {"id": "../../etc"}, "userId"),
        ('mutation { follow(userId: "1") { id } }', {}, "userId"),
        (UPDATE, {"input": {"about": "x" * 2001}}, "about"),
        (UPDATE, {"input": {"interests": ["ok", "bad\x00"]}}, "interests"),
        (
            'query($c: [ID!]) { searchUsers(query: "al", territoryCodes: $c) { totalCount } }',
            {"c": ["dk", "NOT A CODE"]},
            "territoryCodes",
        ),
    ]
    for query, variables, field in probes:
        body = await _post(user_app, who.token, query, variables)
        assert body["data"] is None, (query, body)
        assert body["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": field}
    # Entity representations come from the router, and are held to the character checks.
    body = await _post(
        user_app,
        who.token,
        "query($r: [_Any!]!) { _entities(representations: $r) { __typename } }",
        {"r": [{"__typename": "User", "id": "x\x00"}]},
    )
    assert body["errors"][0]["extensions"]["code"] == "BAD_USER_INPUT"
    fine = await _post(user_app, who.token, SEARCH, {"q": "alice"})
    assert fine["data"]["searchUsers"]["totalCount"] >= 0


def test_every_string_input_has_a_rule() -> None:
    assert missing_rules(build_schema()._schema, INPUT_RULES) == []


async def test_a_repeated_document_is_checked_with_each_requests_variables(
    user_app: UserApp, territories: Territories
) -> None:
    """The document's validation is kept between requests; its variables are not."""
    who = await user_app.people.create(territories.home.code)
    for _ in range(2):
        fine = await _post(user_app, who.token, SEARCH, {"q": "alice"})
        assert fine["data"]["searchUsers"]["totalCount"] >= 0
        bad = await _post(user_app, who.token, SEARCH, {"q": "a" * 101})
        assert bad["data"] is None
        assert bad["errors"][0]["extensions"] == {"code": "BAD_USER_INPUT", "field": "query"}
    invalid = "query { searchUsers(query: 1) { noSuchField } }"
    for _ in range(2):
        body = await _post(user_app, who.token, invalid, {})
        codes = {error["extensions"]["code"] for error in body["errors"]}
        assert codes == {"GRAPHQL_VALIDATION_FAILED"}, body
        assert len(body["errors"]) == 2, body
