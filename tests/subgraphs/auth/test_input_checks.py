"""The probes of the issue against the auth subgraph's edge: NUL bytes, lone surrogates,
oversized strings and malformed IDs are BAD_USER_INPUT before any SQL, and no log line holds
a SQL parameter, password, token or secret."""

from __future__ import annotations

import io
import json
import logging
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from core.db import Database
from core.input_checks import missing_rules
from core.observability.logging import ConsoleFormatter, JsonFormatter
from subgraphs.auth.schema import schema
from subgraphs.auth.validation import INPUT_RULES
from tests.subgraphs.auth.conftest import LOGIN, AuthApp, Territories, register_member

NUL = "bob\x00; drop table users"
LONE_SURROGATE = "bob\ud800"


def _probes(territory: str) -> list[tuple[str, dict[str, Any], str]]:
    """(operation, variables, field at fault) of each argument the issue names."""
    return [
        (LOGIN, {"input": {"username": NUL, "password": "whatever it is"}}, "username"),
        (LOGIN, {"input": {"username": "bob", "password": "pass\x00word"}}, "password"),
        ("query($u: String!) { userByUsername(username: $u) { id } }", {"u": NUL}, "username"),
        (
            "query($t: String!, $c: ID!) { validateInvitation(token: $t, territoryCode: $c) "
            "{ valid } }",
            {"t": "inv_\x00", "c": territory},
            "token",
        ),
        ("mutation($u: String!) { requestPasswordReset(username: $u) }", {"u": NUL}, "username"),
        (
            "query($u: String!) { userByUsername(username: $u) { id } }",
            {"u": LONE_SURROGATE},
            "username",
        ),
        ("query($u: String!) { userByUsername(username: $u) { id } }", {"u": "b" * 65}, "username"),
        ("query($id: ID!) { user(id: $id) { id } }", {"id": "not-a-uuid"}, "id"),
        ("query($c: ID!) { territory(code: $c) { name } }", {"c": "DK; --"}, "code"),
        ("mutation($id: ID!) { revokeSession(id: $id) }", {"id": "1 or 1=1"}, "id"),
        (
            "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
            {"t": "dk." + "x" * 500},
            "refreshToken",
        ),
        # Literals are held to the same rules as variables.
        ('{ userByUsername(username: "bob\\u0000") { id } }', {}, "username"),
        ('{ user(id: "42") { id } }', {}, "id"),
    ]


async def test_bad_strings_are_bad_user_input_before_any_sql(
    auth_app: AuthApp, territories: Territories, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.DEBUG):
        for query, variables, field in _probes(territories.home.code):
            # JSON with \u escapes, as a client may send them (a lone surrogate included).
            sent = json.dumps({"query": query, "variables": variables})
            response = await auth_app.http.post(
                "/graphql", content=sent, headers={"content-type": "application/json"}
            )
            body = response.json()
            assert body["data"] is None, (query, body)
            [error] = body["errors"]
            assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": field}, error
    # Nothing reached the database or failed inside: no SQL error and no error log at all.
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "drop table" not in caplog.text


async def test_every_string_input_has_a_rule() -> None:
    assert missing_rules(schema._schema, INPUT_RULES) == []


async def test_valid_values_still_pass(auth_app: AuthApp, territories: Territories) -> None:
    member = await register_member(auth_app, territories.home.code)
    client = auth_app.client()
    found = await client.data(
        "query($u: String!) { userByUsername(username: $u) { id } }", {"u": member.username}
    )
    assert found["userByUsername"] == {"id": member.id}
    nobody = await client.data(
        "query($id: ID!) { user(id: $id) { id } }", {"id": "00000000-0000-4000-8000-000000000000"}
    )
    assert nobody["user"] is None


async def test_logs_hold_no_sql_parameters_passwords_or_tokens(
    auth_app: AuthApp, territories: Territories
) -> None:
    """What the services write (their own JSON and console formats), while queries fail."""
    password = "correct horse battery staple"
    secret = "secret-parameter-7f3a9c"
    written = io.StringIO()
    handlers = [logging.StreamHandler(written), logging.StreamHandler(written)]
    handlers[0].setFormatter(JsonFormatter("auth"))
    handlers[1].setFormatter(ConsoleFormatter("auth"))
    root = logging.getLogger()
    previous_level = root.level
    root.setLevel(logging.DEBUG)
    for handler in handlers:
        root.addHandler(handler)
    try:
        member = await register_member(auth_app, territories.home.code, password=password)
        client = auth_app.client()
        logged_in = await client.data(
            LOGIN, {"input": {"username": member.username, "password": password}}
        )
        refresh = logged_in["login"]["refreshToken"]
        await client.data(
            "mutation($t: String!) { refreshToken(refreshToken: $t) { accessToken } }",
            {"t": refresh},
        )
        failed = await client.execute(
            LOGIN, {"input": {"username": member.username, "password": "wrong " + secret}}
        )
        assert failed["errors"][0]["extensions"]["code"] == "INVALID_CREDENTIALS"
        for probe, variables, _ in _probes(territories.home.code):
            await auth_app.http.post(
                "/graphql",
                content=json.dumps({"query": probe, "variables": variables}),
                headers={"content-type": "application/json"},
            )
        # Statements PostgreSQL or the driver refuse, with values in them, logged the way the
        # services log unexpected errors (with the traceback) and as a message argument.
        db = Database(auth_app.settings.database)
        try:
            for statement in ("SELECT CAST(:value AS integer)", "SELECT CAST(:value AS uuid)"):
                with pytest.raises(DBAPIError) as refused:
                    async with db.territory_session(territories.home.code) as session:
                        await session.execute(text(statement), {"value": secret})
                log = logging.getLogger("unityplan.tests")
                log.error("query failed", exc_info=refused.value)
                log.warning("query failed: %s", refused.value)
        finally:
            await db.dispose()
    finally:
        for handler in handlers:
            root.removeHandler(handler)
        root.setLevel(previous_level)
    logged = written.getvalue()
    assert "query failed" in logged  # the failures are logged...
    assert "SQLSTATE" in logged
    assert "SELECT CAST" in logged
    for value in (password, secret, refresh, logged_in["login"]["accessToken"], "drop table"):
        assert value not in logged  # ...and no value of theirs, nor any credential
