"""The user subscriptions, fed by the events the outbox relay publishes on NATS, with the same
privacy rules as every read."""

from __future__ import annotations

import asyncio
import contextlib
import queue
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import pytest
from litestar.testing import TestClient

from core.config import Settings
from core.security import KeyRing, access_token_claims, authenticate
from subgraphs.user.app import create_app
from subgraphs.user.context import UserContext
from subgraphs.user.loaders import Loaders
from subgraphs.user.schema import build_schema
from tests.signing import SignedAsRouter, websocket_proof
from tests.subgraphs.user.conftest import (
    UPDATE_PROFILE,
    Person,
    Territories,
    UserApp,
    block,
    follow,
    serving,
)

SCHEMA = build_schema()
USER_UPDATED = "subscription($id: ID!) { userUpdated(userId: $id) { id profile { about } } }"
NEW_FOLLOWER = "subscription { newFollower { followedAt cursor node { id } } }"


@pytest.fixture(scope="module")
async def live_app(user_settings: Settings, territories: Territories) -> AsyncIterator[UserApp]:
    """The app with its outbox relay running (events reach NATS); no consumers needed."""
    async with serving(user_settings, run_consumers=False) as app:
        yield app


async def context(app: UserApp, who: Person | None, *, over_websocket: bool) -> UserContext:
    rt = app.runtime
    if who is None:
        return UserContext(
            rt=rt, viewer=None, auth_error=None, loaders=Loaders(rt.db, rt.directory, None)
        )
    if over_websocket:
        # The token arrives in the connection_init payload, not on the upgrade request.
        return UserContext(
            rt=rt,
            viewer=None,
            auth_error=None,
            loaders=Loaders(rt.db, rt.directory, None),
            connection_params={"Authorization": f"Bearer {who.token}"},
        )
    viewer = await authenticate(f"Bearer {who.token}", rt.keyring, rt.revocations)
    return UserContext(
        rt=rt,
        viewer=viewer,
        auth_error=None,
        loaders=Loaders(rt.db, rt.directory, uuid.UUID(who.id)),
    )


async def received(
    app: UserApp,
    query: str,
    who: Person | None,
    trigger: Callable[[], Awaitable[None]],
    variables: dict[str, Any] | None = None,
    *,
    expect_nothing_within: float | None = None,
) -> list[dict[str, Any]]:
    """Items of a subscription started before `trigger()`: the first one, or (with
    `expect_nothing_within`) every one that arrived in that time."""
    feed = app.runtime.feed
    before = feed.listening
    stream = await SCHEMA.subscribe(
        query,
        variable_values=variables,
        context_value=await context(app, who, over_websocket=True),
    )
    assert isinstance(stream, AsyncIterator)
    items: list[dict[str, Any]] = []

    async def collect() -> None:
        async for result in stream:
            assert not result.errors, result.errors
            items.append(result.data)
            if expect_nothing_within is None:
                return

    task = asyncio.ensure_future(collect())
    deadline = time.monotonic() + 5
    while feed.listening <= before:
        assert not task.done(), task.result()
        assert time.monotonic() < deadline, "the subscription never started listening"
        await asyncio.sleep(0.02)
    try:
        await trigger()
        if expect_nothing_within is None:
            await asyncio.wait_for(task, 10)
        else:
            await asyncio.sleep(expect_nothing_within)
        return items
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task
        await stream.aclose()  # type: ignore[attr-defined]
        # The feed lets go of the NATS subscription too (the next test counts on it).
        for _ in range(250):  # at most 5 seconds
            if feed.listening <= before:
                break
            await asyncio.sleep(0.02)


async def test_new_follower_arrives_from_any_territory(
    live_app: UserApp, territories: Territories
) -> None:
    me = await live_app.people.create(territories.home.code)
    fan = await live_app.people.create(territories.remote.code)
    [item] = await received(live_app, NEW_FOLLOWER, me, lambda: follow(live_app, fan, me))
    edge = item["newFollower"]
    assert edge["node"] == {"id": fan.id}
    assert edge["followedAt"]
    assert edge["cursor"]


async def test_new_follower_needs_a_signed_in_user(live_app: UserApp) -> None:
    result = await SCHEMA.subscribe(
        NEW_FOLLOWER, context_value=await context(live_app, None, over_websocket=False)
    )
    first = await result.__anext__()  # type: ignore[union-attr]
    assert first.errors[0].formatted["extensions"]["code"] == "UNAUTHENTICATED"


async def test_user_updated_follows_privacy(live_app: UserApp, territories: Territories) -> None:
    owner = await live_app.people.create(territories.home.code)
    watcher = await live_app.people.create(territories.home.code)
    owner_client = live_app.client(owner)

    async def say(text: str) -> None:
        await owner_client.data(UPDATE_PROFILE, {"input": {"about": text}})

    [item] = await received(live_app, USER_UPDATED, watcher, lambda: say("hello"), {"id": owner.id})
    assert item["userUpdated"] == {"id": owner.id, "profile": {"about": "hello"}}

    async def hide_then_talk() -> None:
        await block(live_app, owner, watcher)
        await say("not for you")

    items = await received(
        live_app,
        USER_UPDATED,
        watcher,
        hide_then_talk,
        {"id": owner.id},
        expect_nothing_within=1.5,
    )
    assert items == []


async def test_user_updated_of_a_hidden_profile_reads_as_missing(
    live_app: UserApp, territories: Territories
) -> None:
    owner = await live_app.people.create(territories.home.code)
    await live_app.client(owner).data(UPDATE_PROFILE, {"input": {"visibility": "PRIVATE"}})
    for user_id in (owner.id, str(uuid.uuid4())):
        stream = await SCHEMA.subscribe(
            USER_UPDATED,
            variable_values={"id": user_id},
            context_value=await context(live_app, None, over_websocket=False),
        )
        first = await stream.__anext__()  # type: ignore[union-attr]
        assert first.errors[0].formatted["extensions"]["code"] == "NOT_FOUND"


def test_websocket_takes_the_token_from_connection_init(user_settings: Settings) -> None:
    """Through the app's real WebSocket endpoint (graphql-transport-ws)."""
    app = create_app(user_settings, run_outbox_relay=False, run_consumers=False)
    token = KeyRing.from_settings(user_settings).sign(
        access_token_claims(
            user_id=str(uuid.uuid4()),
            username="listener",
            territory_code="dk",
            session_id=str(uuid.uuid4()),
            roles=[],
        ),
        ttl_seconds=60,
    )
    subscribe = {"type": "subscribe", "payload": {"query": NEW_FOLLOWER}}
    with TestClient(app) as client:
        client.auth = SignedAsRouter(user_settings)
        with client.websocket_connect(
            "/graphql",
            subprotocols=["graphql-transport-ws"],
            headers=websocket_proof(user_settings),
        ) as ws:
            ws.send_json({"type": "connection_init", "payload": {}})
            assert ws.receive_json() == {"type": "connection_ack"}
            ws.send_json({"id": "anonymous", **subscribe})
            refused = ws.receive_json()
            assert refused["id"] == "anonymous"
            assert refused["payload"]["errors"][0]["message"] == "Authentication required"
        with client.websocket_connect(
            "/graphql",
            subprotocols=["graphql-transport-ws"],
            headers=websocket_proof(user_settings),
        ) as ws:
            ws.send_json(
                {"type": "connection_init", "payload": {"Authorization": f"Bearer {token}"}}
            )
            assert ws.receive_json() == {"type": "connection_ack"}
            ws.send_json({"id": "signed-in", **subscribe})
            # Accepted: nothing comes back until someone follows (a refusal would come at once).
            with pytest.raises(queue.Empty):
                ws.receive_json(timeout=1.0)
            ws.send_json({"type": "ping"})
            assert ws.receive_json(timeout=5.0) == {"type": "pong"}
            ws.send_json({"id": "signed-in", "type": "complete"})


async def test_one_event_is_read_once_for_all_its_subscribers_each_seeing_what_it_may(
    live_app: UserApp, territories: Territories, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Three subscriptions on one profile (anonymous, a follower, a viewer the owner then
    blocks): the event's profile and relationships are read in one batch for all three, and
    the blocked viewer alone hears nothing."""
    owner = await live_app.people.create(territories.home.code)
    fan = await live_app.people.create(territories.home.code)
    shunned = await live_app.people.create(territories.home.code)
    await follow(live_app, fan, owner)
    views = live_app.runtime.event_views
    batches: list[int] = []
    load = views._load

    async def counted(owner_id: uuid.UUID, read: Any, viewers: Any) -> Any:
        batches.append(len(viewers))
        return await load(owner_id, read, viewers)

    monkeypatch.setattr(views, "_load", counted)
    feed = live_app.runtime.feed
    before = feed.listening
    heard: dict[str, list[Any]] = {"anonymous": [], "fan": [], "shunned": []}
    tasks: list[asyncio.Future[None]] = []
    streams: list[Any] = []
    for name, who in (("anonymous", None), ("fan", fan), ("shunned", shunned)):
        stream = await SCHEMA.subscribe(
            USER_UPDATED,
            variable_values={"id": owner.id},
            context_value=await context(live_app, who, over_websocket=True),
        )
        assert isinstance(stream, AsyncIterator)
        streams.append(stream)

        async def collect(stream: AsyncIterator[Any] = stream, name: str = name) -> None:
            async for result in stream:
                assert not result.errors, result.errors
                heard[name].append(result.data["userUpdated"]["profile"]["about"])

        tasks.append(asyncio.ensure_future(collect()))
    deadline = time.monotonic() + 5
    while feed.listening < before + 3:
        assert time.monotonic() < deadline, "the subscriptions never started listening"
        await asyncio.sleep(0.02)
    try:
        await block(live_app, owner, shunned)
        await live_app.client(owner).data(UPDATE_PROFILE, {"input": {"about": "news"}})
        deadline = time.monotonic() + 10
        while not (heard["anonymous"] and heard["fan"]):
            assert time.monotonic() < deadline, heard
            await asyncio.sleep(0.02)
        await asyncio.sleep(0.5)  # time for anything the blocked viewer should not get
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        for stream in streams:
            await stream.aclose()
        for _ in range(250):  # the feed lets go of the subscriptions: at most 5 seconds
            if feed.listening <= before:
                break
            await asyncio.sleep(0.02)
    assert heard == {"anonymous": ["news"], "fan": ["news"], "shunned": []}
    assert batches == [3]
