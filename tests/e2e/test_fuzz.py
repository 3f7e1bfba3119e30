"""Queries and mutations generated from `schema.graphql` (hypothesis-graphql), with valid and
invalid arguments, anonymous and signed in, against the router of the real stack: never a 5xx,
never INTERNAL_SERVER_ERROR, never a stack trace, SQL or a file path in an answer.

Derandomized with a fixed budget (`FUZZ_EXAMPLES`, 120 by default), so `make test` runs the
same examples every time; `make fuzz` runs a longer budget.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import re
from pathlib import Path
from typing import Any

import httpx
from graphql import build_schema
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from hypothesis_graphql import Mode, from_schema, nodes

from tests.e2e.stack import Stack

pytest_plugins = ["tests.e2e.stack"]

SCHEMA = build_schema((Path(__file__).parents[2] / "schema.graphql").read_text())
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "120"))
# Mutations that would end the signed-in fuzzing session or its account are generated
# anonymously only (signed in, every later example would be anonymous too).
SESSION_ENDING = {"logout", "logoutAll", "revokeSession", "changePassword", "deleteMyAccount"}
MUTATIONS = sorted(SCHEMA.mutation_type.fields) if SCHEMA.mutation_type else []
SCALARS = {
    "DateTime": st.sampled_from(["2026-01-01T00:00:00Z", "not a date", ""]).map(nodes.String),
    "JSON": st.sampled_from(["{}", "x"]).map(nodes.String),
    # Files only travel in multipart requests; in JSON an upload is a bad value.
    "Upload": st.just(nodes.Null),
}
LEAKS = re.compile(
    r"Traceback|File \"|\.py\b|/work/|/usr/|site-packages|sqlalchemy|asyncpg|psycopg|"
    r"\[SQL|\bSELECT\b.+\bFROM\b|\bINSERT INTO\b|\bUPDATE\b.+\bSET\b|SQLSTATE",
    re.IGNORECASE,
)


def _documents() -> st.SearchStrategy[tuple[str, bool]]:
    """(document, signed in) pairs: queries and mutations, valid and invalid arguments."""
    kinds = []
    for mode in (Mode.POSITIVE, Mode.NEGATIVE):
        kinds.append(
            st.tuples(from_schema(SCHEMA, custom_scalars=SCALARS, mode=mode), st.booleans())
        )
        kinds.append(
            st.tuples(
                from_schema(SCHEMA, fields=MUTATIONS, custom_scalars=SCALARS, mode=mode),
                st.just(False),
            )
        )
        kinds.append(
            st.tuples(
                from_schema(
                    SCHEMA,
                    fields=[m for m in MUTATIONS if m not in SESSION_ENDING],
                    custom_scalars=SCALARS,
                    mode=mode,
                ),
                st.just(True),
            )
        )
    return st.one_of(kinds).map(lambda pair: (str(pair[0]), pair[1]))


def _problems(status: int, body: Any) -> list[str]:
    found = []
    if status >= 500:
        found.append(f"HTTP {status}")
    if not isinstance(body, dict):
        return [*found, "not a GraphQL response"]
    for error in body.get("errors") or []:
        code = (error.get("extensions") or {}).get("code")
        if code == "INTERNAL_SERVER_ERROR":
            found.append(f"INTERNAL_SERVER_ERROR: {error.get('message')}")
        text = str(error)
        if LEAKS.search(text):
            found.append(f"leak: {text[:300]}")
    return found


def _fuzz(router: str, token: str, ran: list[int]) -> None:
    addresses = itertools.count(1)

    @settings(
        max_examples=EXAMPLES,
        derandomize=True,
        database=None,
        deadline=None,
        phases=[Phase.explicit, Phase.generate],
        suppress_health_check=list(HealthCheck),
    )
    @given(case=_documents())
    def check(case: tuple[str, bool]) -> None:
        document, signed_in = case
        n = next(addresses)
        headers = {"X-Forwarded-For": f"10.77.{n // 250 % 250}.{n % 250 + 1}"}
        if signed_in:
            headers["Authorization"] = f"Bearer {token}"
        with httpx.Client(timeout=60) as http:
            response = http.post(f"{router}/graphql", json={"query": document}, headers=headers)
        try:
            body = response.json()
        except ValueError:
            body = None
        ran[0] += 1
        problems = _problems(response.status_code, body)
        assert not problems, f"{document}\n-> {problems}"

    check()


async def test_generated_operations_never_fail_inside(stack: Stack) -> None:
    member = await stack.register()
    ran = [0]
    # The stack serves from this event loop; the examples run in a thread meanwhile.
    await asyncio.to_thread(_fuzz, stack.urls["router"], member.access_token, ran)
    assert ran[0] >= min(EXAMPLES, 50)
    print(f"fuzz: {ran[0]} examples, 0 failures")
