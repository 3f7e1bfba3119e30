"""A third subgraph joins the platform through one registry entry: built from the subgraph kit
alone (tests/unityplan/third_subgraph), declared as an entry point of `unityplan.services`, it
is composed by `unityplan compose`, served by `unityplan dev` beside auth and user, and answered
through the router, its User field resolved on the user the auth subgraph registered."""

from __future__ import annotations

import os
import re
import secrets
import signal
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from core.events import drop_scratch_namespace
from tests.conftest import Servers
from tests.e2e.stack import PASSWORD, REGISTER
from tests.unityplan.test_devstack_dev import DevRun, _unityplan
from unityplan.devstack import free_port, port_in_use
from unityplan.registry import ENTRY_POINT_GROUP, SERVICES

REPOSITORY = Path(__file__).parents[2]
# The one registry entry: what the third subgraph's own package metadata would declare.
ENTRY_POINTS = f"[{ENTRY_POINT_GROUP}]\nthird = tests.unityplan.third_subgraph.service:SERVICE\n"
SERVICE_PORTS = ("AUTH_PORT", "USER_PORT", "THIRD_PORT", "ROUTER_PORT")


def _service_url(run: DevRun, name: str) -> str:
    line = re.compile(rf"^\s+{name}\s+(?P<url>http://\S+/graphql)$")
    found = [match["url"] for text in run.lines if (match := line.match(text))]
    assert found, run.output
    return found[0]


@pytest.fixture
def installed(tmp_path: Path) -> Path:
    """A directory that, on a process's path, installs a distribution naming the third subgraph
    (its metadata only: the package itself is this repository's tests.unityplan.third_subgraph)."""
    metadata = tmp_path / "site" / "unityplan_third_subgraph-0.dist-info"
    metadata.mkdir(parents=True)
    (metadata / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: unityplan-third-subgraph\nVersion: 0\n", encoding="utf-8"
    )
    (metadata / "entry_points.txt").write_text(ENTRY_POINTS, encoding="utf-8")
    return metadata.parent


@pytest.fixture
async def third_env(
    servers: Servers, run_id: str, installed: Path, tmp_path: Path
) -> AsyncIterator[dict[str, str]]:
    """The environment of a `unityplan dev` run on the shared servers, with a database, NATS
    namespace and Redis key prefix of its own (removed afterwards), and the third subgraph
    installed."""
    tag = secrets.token_hex(3)
    database = f"unityplan_{run_id}_third_{tag}"
    namespace = f"{run_id}_third_{tag}"
    admin = servers.postgres_admin_url.replace("postgresql+asyncpg://", "postgresql://")
    connection = await asyncpg.connect(admin)
    try:
        await connection.execute(f'CREATE DATABASE "{database}"')
    finally:
        await connection.close()
    env = dict(os.environ)
    env.update({name: str(free_port()) for name in SERVICE_PORTS})
    env.update(
        PYTHONPATH=os.pathsep.join([str(installed), str(REPOSITORY)]),
        DEVSTACK_DIR=str(tmp_path / ".devstack"),
        DATABASE_URL=admin.rsplit("/", 1)[0] + f"/{database}",
        POD_DATABASE_URLS="",
        NATS_URL=servers.nats_url,
        EVENTS_NAMESPACE=namespace,
        REDIS_URL=servers.redis_url,
        REDIS_KEY_PREFIX=f"{run_id}:third-{tag}:",
        ARGON2_MEMORY_KIB="1024",
        ARGON2_TIME_COST="1",
        LOG_LEVEL="WARNING",
    )
    try:
        yield env
    finally:
        await drop_scratch_namespace(servers.nats_url, namespace)
        connection = await asyncpg.connect(admin)
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{database}" WITH (FORCE)')
        finally:
            await connection.close()


@pytest.fixture
def runs() -> Iterator[list[DevRun]]:
    started: list[DevRun] = []
    yield started
    for run in started:
        run.kill()  # only when the test failed half-way


def test_the_third_subgraph_is_not_in_this_process() -> None:
    """Only processes that see its entry point have it: the registry of the test run does not."""
    assert "third" not in [service.name for service in SERVICES]


async def test_one_registry_entry_adds_a_subgraph_composed_served_and_routed(
    tmp_path: Path, third_env: dict[str, str], runs: list[DevRun]
) -> None:
    supergraph = _unityplan(tmp_path, third_env, "compose")
    assert 'THIRD @join__graph(name: "third"' in supergraph, supergraph
    assert re.search(r"motto: String! @join__field\(graph: THIRD\)", supergraph), supergraph

    run = DevRun(tmp_path, third_env)
    runs.append(run)
    run.wait_ready(timeout=120)
    assert "(without" not in run.output, run.output
    third = _service_url(run, "third")
    assert third == f"http://127.0.0.1:{third_env['THIRD_PORT']}/graphql"
    router = _service_url(run, "router")
    invitation = re.search(r"invitation token: (inv_\w+)", run.output)
    assert invitation is not None, run.output

    async with httpx.AsyncClient(timeout=30) as client:
        # Subgraphs answer only the router.
        direct = await client.post(third, json={"query": "{ almanac { greeting } }"})
        assert direct.status_code in (401, 403), direct.text

        anonymous = await client.post(router, json={"query": "{ almanac { greeting } }"})
        assert anonymous.json() == {"data": {"almanac": {"greeting": "Hello, guest"}}}

        registered = await client.post(
            router,
            json={
                "query": REGISTER,
                "variables": {
                    "input": {
                        "territoryCode": "dk",
                        "invitationToken": invitation[1],
                        "username": "thirdparty",
                        "password": PASSWORD,
                    }
                },
            },
        )
        body = registered.json()
        assert not body.get("errors"), body
        member = body["data"]["register"]
        user_id = member["user"]["id"]
        answer = await client.post(
            router,
            json={"query": "{ me { username motto } almanac { greeting } }"},
            headers={"authorization": f"Bearer {member['accessToken']}"},
        )
    assert answer.json() == {
        "data": {
            "me": {"username": "thirdparty", "motto": f"Planned together with {user_id}"},
            "almanac": {"greeting": f"Hello, {user_id}"},
        }
    }

    assert run.stop(signal.SIGINT) == 0, run.output
    assert not [name for name in SERVICE_PORTS if port_in_use(int(third_env[name]))]
