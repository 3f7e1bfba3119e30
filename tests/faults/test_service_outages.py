"""Outages of the servers and services behind the router, under writes, on a stack of the
tests' own (see `tests.faults.stack`): NATS down for 10 s, a PostgreSQL restart, and a
subgraph killed mid-write. Each test prints its figures (events sent, delivered, duplicated;
errors by code; recovery seconds) as one `fault figures:` line; docs/operations.md keeps them.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import orjson
from sqlalchemy.engine import make_url
from websockets.asyncio.client import ClientConnection, connect

from core.db import schema_for
from tests.e2e.stack import Member, eventually
from tests.faults.stack import TERRITORY, Answer, FaultStack

pytest_plugins = ["tests.faults.stack"]

UPDATE_ABOUT = "mutation About($about: String!) { updateProfile(input: {about: $about}) { about } }"
ME = "query Me { me { id username profile { about } followerCount } }"
FOLLOW = "mutation Follow($id: ID!) { follow(userId: $id) { id } }"
UNFOLLOW = "mutation Unfollow($id: ID!) { unfollow(userId: $id) }"
NEW_FOLLOWER = "subscription { newFollower { followedAt node { id } } }"
LOGIN = """
mutation Login($input: LoginInput!) { login(input: $input) { accessToken } }
"""
NATS_DOWN_SECONDS = 10.0


def figures(name: str, **values: object) -> None:
    print(f"fault figures: {name}: " + ", ".join(f"{k}={v}" for k, v in values.items()))


class Subscription:
    """One graphql-transport-ws subscription through the router, read in the background."""

    def __init__(self, socket: ClientConnection) -> None:
        self.socket = socket
        self.payloads: list[dict[str, Any]] = []
        self.ended: dict[str, Any] | None = None  # the `error` or `complete` that ended it
        self.reader = asyncio.create_task(self._read())

    async def _read(self) -> None:
        async for raw in self.socket:
            message = orjson.loads(raw)
            if message["type"] == "next":
                self.payloads.append(message["payload"])
            elif message["type"] == "ping":
                await self.socket.send(orjson.dumps({"type": "pong"}).decode())
            elif message["type"] in ("error", "complete"):
                self.ended = message
                return


@asynccontextmanager
async def subscribed(
    stack: FaultStack, query: str, variables: dict[str, Any], token: str
) -> AsyncIterator[Subscription]:
    async with connect(stack.ws_url, subprotocols=["graphql-transport-ws"]) as socket:  # type: ignore[list-item]
        init = {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
        await socket.send(orjson.dumps(init).decode())
        assert orjson.loads(await socket.recv())["type"] == "connection_ack"
        subscribe = {
            "id": "1",
            "type": "subscribe",
            "payload": {"query": query, "variables": variables},
        }
        await socket.send(orjson.dumps(subscribe).decode())
        subscription = Subscription(socket)
        try:
            yield subscription
        finally:
            subscription.reader.cancel()


async def _update(stack: FaultStack, member: Member, about: str) -> Answer:
    return await stack.graphql(UPDATE_ABOUT, {"about": about}, token=member.access_token)


async def test_writes_during_a_nats_outage_reach_subscribers_once_and_in_order(
    fault_stack: FaultStack,
) -> None:
    target = await fault_stack.register()
    followers = [await fault_stack.register() for _ in range(4)]
    sent: list[str] = []  # the follower of every follow, in order

    async def follow_and_unfollow(n: int, phase: str) -> None:
        member = followers[n % len(followers)]
        answer = await fault_stack.graphql(FOLLOW, {"id": target.id}, token=member.access_token)
        assert answer.ok, (phase, answer.body)  # the outbox keeps the event: writes go on
        sent.append(member.id)
        answer = await fault_stack.graphql(UNFOLLOW, {"id": target.id}, token=member.access_token)
        assert answer.ok, (phase, answer.body)

    def received() -> list[str]:
        return [p["data"]["newFollower"]["node"]["id"] for p in watch.payloads]

    async with subscribed(fault_stack, NEW_FOLLOWER, {}, target.access_token) as watch:
        # The subscription is live once an event arrives through it; one written before its
        # upstream listened is not its to see. So: follow until one arrives, then count from
        # what arrived.
        for _ in range(6):
            await follow_and_unfollow(0, "before")
            with contextlib.suppress(AssertionError):
                await eventually(lambda: _async(bool(watch.payloads)), within=10.0)
                break
        else:
            raise AssertionError("no event reached the subscription in 60 s")
        await asyncio.sleep(1.0)  # a late one of the earlier attempts would show by now
        sent[:] = received()
        for n in range(1, 10):
            await follow_and_unfollow(n, "before")
        await asyncio.to_thread(fault_stack.servers.stop_server, "nats")
        stopped = time.monotonic()
        while_down = 0
        while time.monotonic() - stopped < NATS_DOWN_SECONDS:
            await follow_and_unfollow(while_down, "during")
            while_down += 1
            await asyncio.sleep(0.2)
        await asyncio.to_thread(fault_stack.servers.restart, "nats")
        back = time.monotonic()
        for n in range(10):
            await follow_and_unfollow(n, "after")

        with contextlib.suppress(AssertionError):  # what did arrive is measured below
            await eventually(lambda: _async(len(received()) >= len(sent)), within=60.0)
        recovered = time.monotonic() - back
        await asyncio.sleep(1.0)  # a duplicate would arrive right behind
        got = received()
        figures(
            "nats down 10 s",
            sent=len(sent),
            sent_while_down=while_down,
            delivered=len(got),
            lost=sum((Counter(sent) - Counter(got)).values()),
            duplicated=sum((Counter(got) - Counter(sent)).values()),
            all_delivered_within_s_of_nats_back=f"{recovered:.1f}",
        )
        assert watch.ended is None, watch.ended  # the subscription stayed open
        assert got == sent  # none lost, none twice, in the order written


async def test_a_postgresql_restart_answers_service_unavailable_and_recovers_on_the_next_request(
    fault_stack: FaultStack,
) -> None:
    member = await fault_stack.register()
    assert (await fault_stack.graphql(ME, token=member.access_token)).ok
    await asyncio.to_thread(fault_stack.servers.stop_server, "postgres")
    answers: list[Answer] = []
    try:
        login = {
            "input": {"territoryCode": TERRITORY, "username": member.username, "password": "x" * 12}
        }
        for n in range(3):
            answers.append(await fault_stack.graphql(ME, token=member.access_token))
            answers.append(await _update(fault_stack, member, f"while down {n}"))
            answers.append(await fault_stack.graphql(LOGIN, login))
    finally:
        await asyncio.to_thread(fault_stack.servers.restart, "postgres")
    back = time.monotonic()
    first = await fault_stack.graphql(ME, token=member.access_token)
    recovered = time.monotonic() - back
    codes = Counter(code for answer in answers for code in answer.codes)
    figures(
        "postgresql restart",
        requests_while_down=len(answers),
        errors_by_code=dict(codes),
        http_statuses=dict(Counter(answer.status for answer in answers)),
        first_request_after_ok=first.ok,
        first_request_after_s=f"{recovered:.2f}",
    )
    assert all(answer.errors for answer in answers)
    assert set(codes) == {"SERVICE_UNAVAILABLE"}, codes
    for answer in answers:
        # No data at all: 503. A nullable root field is answered as null, which the GraphQL
        # over HTTP spec requires to be a 2xx; either way nothing but the outage is reported.
        data = answer.body.get("data")
        assert answer.status == (503 if data is None else 200), answer
        assert data is None or not any(data.values()), answer
        assert all(error["extensions"].get("retryAfter") for error in answer.errors), answer
    assert first.ok, first.body  # the first request after the restart is served
    assert first.body["data"]["me"]["profile"]["about"] is None  # no write got through


async def test_a_subgraph_killed_mid_write_leaves_no_half_written_write(
    fault_stack: FaultStack,
) -> None:
    target = await fault_stack.register()
    followers = [await fault_stack.register() for _ in range(12)]

    async def follow(member: Member, delay: float) -> Answer:
        await asyncio.sleep(delay)
        return await fault_stack.graphql(FOLLOW, {"id": target.id}, token=member.access_token)

    writes = [asyncio.create_task(follow(member, n * 0.1)) for n, member in enumerate(followers)]
    # Killed once a first follow is answered: some done, some in flight, some not yet sent.
    await asyncio.wait(writes, return_when=asyncio.FIRST_COMPLETED)
    fault_stack.kill("user")
    killed = time.monotonic()
    first = await asyncio.gather(*writes)
    await fault_stack.restart("user")
    await fault_stack.ready()
    recovered = time.monotonic() - killed
    codes = Counter(code for answer in first for code in answer.codes)
    for answer in first:  # an answered write is an outage or done, never a made-up result
        assert answer.ok or set(answer.codes) <= {"SUBREQUEST_HTTP_ERROR", "SERVICE_UNAVAILABLE"}
        assert answer.ok or answer.status == 503
        assert all(error["extensions"].get("retryAfter") for error in answer.errors)
    # What a client does with an outage: send it again (a follow is idempotent).
    for member, answer in zip(followers, first, strict=True):
        if not answer.ok:
            again = await fault_stack.graphql(FOLLOW, {"id": target.id}, token=member.access_token)
            assert again.ok, again.body
    rows, events = await _follows_and_events(fault_stack, target.id)
    await eventually(
        lambda: _all_published(fault_stack, target.id), within=30.0, what="every event sent"
    )
    figures(
        "user subgraph killed",
        writes=len(first),
        answered_ok=sum(1 for answer in first if answer.ok),
        errors_by_code=dict(codes),
        back_in_s=f"{recovered:.1f}",
        follows=len(rows),
        follow_events=len(events),
    )
    assert 0 < sum(1 for answer in first if answer.ok) < len(first)  # the kill cut writes
    expected = {member.id for member in followers}
    assert rows == expected  # every follow is there once, whichever answer it first got
    assert Counter(events) == Counter(expected)  # each with exactly one event, none without
    me = await fault_stack.graphql(ME, token=target.access_token)
    assert me.body["data"]["me"]["followerCount"] == len(followers)


async def _async(value: bool) -> bool:
    return value


def _admin_url(stack: FaultStack) -> str:
    return (
        make_url(stack.settings.database.url)
        .set(drivername="postgresql")
        .render_as_string(hide_password=False)
    )


async def _follows_and_events(stack: FaultStack, target: str) -> tuple[set[str], list[str]]:
    """The target's followers in its territory's table, and the follower of every `followed`
    event written to that territory's outbox for the target."""
    schema = schema_for(TERRITORY)
    connection = await asyncpg.connect(_admin_url(stack))
    try:
        rows = await connection.fetch(
            f'SELECT follower_id FROM "{schema}".user_connections WHERE following_id = $1',  # noqa: S608 - our schema name
            target,
        )
        events = await connection.fetch(
            f"SELECT payload->'data'->>'followerId' AS follower FROM \"{schema}\".outbox "  # noqa: S608
            "WHERE type = 'unityplan.user.followed' AND payload->'data'->>'followingId' = $1",
            target,
        )
    finally:
        await connection.close()
    return {str(row["follower_id"]) for row in rows}, [row["follower"] for row in events]


async def _all_published(stack: FaultStack, target: str) -> bool:
    schema = schema_for(TERRITORY)
    connection = await asyncpg.connect(_admin_url(stack))
    try:
        pending = await connection.fetchval(
            f'SELECT count(*) FROM "{schema}".outbox WHERE sent_at IS NULL',  # noqa: S608
        )
    finally:
        await connection.close()
    return int(pending) == 0
