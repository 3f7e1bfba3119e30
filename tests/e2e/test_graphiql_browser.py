"""GraphiQL as the router serves it, in a real browser (Debian's Chromium driven by
playwright-core, `tests/browser/graphiql.cjs`): it loads the schema, runs a query with the
signed-in caller's token from its headers editor, and runs a subscription whose event arrives."""

from __future__ import annotations

import asyncio
import os
import shutil
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import orjson
import pytest

from tests.e2e.stack import Stack, served_router

pytest_plugins = ["tests.e2e.stack"]

BROWSER_TESTS = Path(__file__).resolve().parents[1] / "browser"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
READY = (BROWSER_TESTS / "node_modules" / "playwright-core").is_dir() and Path(CHROMIUM).exists()

pytestmark = pytest.mark.skipif(
    not READY and not os.environ.get("CI"),
    reason="needs Chromium and `npm ci` in tests/browser (make browser-deps); CI installs both",
)


@pytest.fixture
async def router(stack: Stack) -> AsyncIterator[str]:
    async with served_router(stack, ROUTER_GRAPHIQL=True) as (_, url):
        yield f"{url}/graphql"


async def _step(lines: asyncio.StreamReader, name: str) -> dict[str, Any]:
    """The next report of the driver, which must be `name`."""
    async with asyncio.timeout(90):
        while True:
            raw = await lines.readline()
            assert raw, f"the browser driver ended before {name!r}"
            report: dict[str, Any] = orjson.loads(raw)
            if report["step"] == "page error":
                continue  # reported for diagnosis; the steps below decide
            assert report["step"] == name, report
            return report


async def test_graphiql_loads_the_schema_runs_a_query_and_a_subscription(
    stack: Stack, router: str
) -> None:
    node = shutil.which("node")
    assert node is not None, "Node.js is needed for the browser test"
    member = await stack.register()
    subscription = (
        f'subscription {{ territoryMemberJoined(territoryCode: "{stack.territory.code}") '
        "{ id username } }"
    )
    driver = await asyncio.create_subprocess_exec(
        node,
        str(BROWSER_TESTS / "graphiql.cjs"),
        router,
        f"Bearer {member.access_token}",
        "{ me { id username } }",
        subscription,
        stdout=asyncio.subprocess.PIPE,
        env={**os.environ, "CHROMIUM": CHROMIUM},
    )
    assert driver.stdout is not None
    try:
        schema = await _step(driver.stdout, "schema")
        assert {"Query", "Mutation", "Subscription", "User", "Territory"} <= set(schema["types"])
        query = await _step(driver.stdout, "query")
        assert query["result"] == {"data": {"me": {"id": member.id, "username": member.username}}}
        await _step(driver.stdout, "subscribed")
        # Newcomers join until the browser shows one (the first may come before it listens).
        joined: dict[str, str] = {}
        event = asyncio.ensure_future(_step(driver.stdout, "event"))
        while not event.done():
            newcomer = await stack.register()
            joined[newcomer.id] = newcomer.username
            await asyncio.wait([event], timeout=1.5)
        shown = event.result()["result"]["data"]["territoryMemberJoined"]
        assert joined.get(shown["id"]) == shown["username"]
    finally:
        if driver.returncode is None:
            driver.kill()
        await driver.wait()
