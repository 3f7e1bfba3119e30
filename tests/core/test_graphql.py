"""The shared GraphQL error policy, on a tiny federation schema, directly and over HTTP."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import AsyncGenerator, Iterator
from typing import Any, NewType

import httpx
import pytest
import strawberry
from strawberry.schema.config import StrawberryConfig

from core.config import Settings
from core.errors import BadUserInput, InvalidToken, NotFound, RateLimited
from core.graphql import FederationSchema
from core.kit.graphql import graphql_controller
from core.observability import JsonFormatter
from core.service import create_service_app

LEAK = "SELECT * FROM territory_dk.users WHERE password_hash = 'x' -- /srv/app/core/db.py"


def _parse_code(value: str) -> str:
    if not value.isalpha():
        raise ValueError("A code is letters only")
    return value


Code = NewType("Code", str)
# The scalar of the `Code` type, as the schema maps it.
SCALARS = StrawberryConfig(
    scalar_map={Code: strawberry.scalar(name="Code", serialize=str, parse_value=_parse_code)}
)


@strawberry.type
class Query:
    @strawberry.field
    def territory(self, code: str) -> str:
        raise NotFound(f"No territory {code!r}")

    @strawberry.field
    def login(self) -> str:
        raise RateLimited(retry_after=42)

    @strawberry.field
    def register(self, username: str) -> str:
        raise BadUserInput("Usernames are 3 to 30 characters", field="username")

    @strawberry.field
    def invitation(self) -> str:
        raise InvalidToken("This invitation has expired", reason="EXPIRED")

    @strawberry.field
    def broken(self) -> str:
        raise RuntimeError(LEAK)

    @strawberry.field
    def number(self, n: int) -> int:
        return n

    @strawberry.field
    def echo(self, code: Code) -> str:
        return str(code)

    @strawberry.field
    def fine(self) -> str:
        return "ok"


schema = FederationSchema(query=Query, config=SCALARS)


@pytest.fixture
def server_log() -> Iterator[io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("svc-test"))
    graphql_logger = logging.getLogger("unityplan.graphql")
    graphql_logger.addHandler(handler)
    yield stream
    graphql_logger.removeHandler(handler)


async def _errors(query: str, variables: dict[str, Any] | None = None) -> list[dict[str, Any]]:
    result = await schema.execute(query, variable_values=variables)
    assert result.errors
    return [error.formatted for error in result.errors]


@pytest.mark.parametrize(
    ("query", "message", "extensions"),
    [
        ('{ territory(code: "xx") }', "No territory 'xx'", {"code": "NOT_FOUND"}),
        (
            "{ login }",
            "Too many attempts, try again later",
            {"code": "RATE_LIMITED", "retryAfter": 42},
        ),
        (
            '{ register(username: "a") }',
            "Usernames are 3 to 30 characters",
            {"code": "BAD_USER_INPUT", "field": "username"},
        ),
        (
            "{ invitation }",
            "This invitation has expired",
            {"code": "INVALID_TOKEN", "reason": "EXPIRED"},
        ),
    ],
)
async def test_platform_errors_keep_message_and_extensions(
    query: str, message: str, extensions: dict[str, Any], server_log: io.StringIO
) -> None:
    (error,) = await _errors(query)
    assert error["message"] == message
    assert error["extensions"] == extensions
    assert error["path"]
    assert server_log.getvalue() == ""  # expected errors are not server problems


async def test_other_exceptions_are_masked_and_logged(server_log: io.StringIO) -> None:
    result = await schema.execute("query Broken { broken fine }")

    assert result.data is None  # `broken` is non-null: the error nulls the whole result
    (error,) = [e.formatted for e in result.errors or []]
    assert error == {
        "message": "Internal server error",
        "locations": [{"line": 1, "column": 16}],
        "path": ["broken"],
        "extensions": {"code": "INTERNAL_SERVER_ERROR"},
    }
    entry = json.loads(server_log.getvalue())
    assert entry["level"] == "ERROR"
    assert entry["operation"] == "Broken"
    assert "RuntimeError" in entry["exception"]
    assert "territory_dk.users" in entry["exception"]


async def test_validation_errors_keep_their_message() -> None:
    (error,) = await _errors("{ nope }")
    assert "Cannot query field 'nope'" in error["message"]
    assert error["extensions"] == {"code": "GRAPHQL_VALIDATION_FAILED"}


async def test_literal_argument_of_the_wrong_type_is_a_validation_error() -> None:
    (error,) = await _errors('{ number(n: "x") }')
    assert error["extensions"]["code"] == "GRAPHQL_VALIDATION_FAILED"


async def test_syntax_errors() -> None:
    (error,) = await _errors("{ fine ")
    assert error["message"].startswith("Syntax Error")
    assert error["extensions"] == {"code": "GRAPHQL_PARSE_FAILED"}


async def test_bad_variables_are_bad_user_input(server_log: io.StringIO) -> None:
    (wrong_type,) = await _errors("query($n: Int!) { number(n: $n) }", {"n": "x"})
    assert wrong_type["message"].startswith("Variable '$n'")
    assert wrong_type["extensions"] == {"code": "BAD_USER_INPUT"}

    (missing,) = await _errors("query($n: Int!) { number(n: $n) }", {})
    assert missing["extensions"] == {"code": "BAD_USER_INPUT"}

    (scalar,) = await _errors("query($c: Code!) { echo(code: $c) }", {"c": "12"})
    assert "A code is letters only" in scalar["message"]
    assert scalar["extensions"] == {"code": "BAD_USER_INPUT"}
    assert server_log.getvalue() == ""


async def test_over_http_with_the_trace_id_in_the_server_log(
    settings: Settings, server_log: io.StringIO
) -> None:
    trace_id = "0af7651916cd43dd8448eb211c80319c"
    app = create_service_app(
        "svc-graphql",
        settings,
        route_handlers=[graphql_controller(schema)],
        configure_logs=False,
    )
    async with (
        app.lifespan(),
        httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://test") as client,
    ):
        response = await client.post(
            "/graphql",
            json={"query": "{ broken }"},
            headers={"traceparent": f"00-{trace_id}-b7ad6b7169203331-01"},
        )
        limited = await client.post("/graphql", json={"query": "{ login }"})

    assert response.status_code == 200
    assert "territory_dk" not in response.text
    assert "/srv/app" not in response.text
    assert "Traceback" not in response.text
    assert [e["extensions"] for e in response.json()["errors"]] == [
        {"code": "INTERNAL_SERVER_ERROR"}
    ]
    assert [e["extensions"] for e in limited.json()["errors"]] == [
        {"code": "RATE_LIMITED", "retryAfter": 42}
    ]
    entry = json.loads(server_log.getvalue())
    assert entry["trace_id"] == trace_id


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def ticks(self, fail_with: str) -> AsyncGenerator[int, None]:
        yield 1
        if fail_with == "platform":
            raise NotFound("No such stream")
        raise RuntimeError(LEAK)


subscription_schema = FederationSchema(query=Query, subscription=Subscription, config=SCALARS)


@pytest.mark.parametrize(
    ("fail_with", "message", "code"),
    [
        ("platform", "No such stream", "NOT_FOUND"),
        ("unexpected", "Internal server error", "INTERNAL_SERVER_ERROR"),
    ],
)
async def test_subscription_events_follow_the_same_policy(
    fail_with: str, message: str, code: str
) -> None:
    stream = await subscription_schema.subscribe(
        "subscription($f: String!) { ticks(failWith: $f) }", variable_values={"f": fail_with}
    )
    results = [result async for result in stream]  # type: ignore[union-attr]
    assert results[0].data == {"ticks": 1}
    failed = results[-1]
    assert failed.errors
    formatted = failed.errors[0].formatted
    assert formatted["message"] == message
    assert formatted["extensions"]["code"] == code
    assert "SELECT" not in json.dumps([r.errors[0].formatted for r in results if r.errors])
