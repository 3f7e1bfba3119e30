"""The realtime fan-out: an event naming its audience reaches each of those users' subjects
`rt.user.<id>.<domain>.<action>` after JetStream holds it, and no one else's; the realtime
stream keeps the copies for the live feeds to resume from."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator

import nats
import orjson
import pytest
from nats.aio.client import Client as NatsClient
from nats.aio.msg import Msg
from prometheus_client import CollectorRegistry

from core.config import Settings
from core.db import Database
from core.events import EventBus, OutboxRelay, enqueue, realtime_user_subject
from core.events.bus import OutgoingDocument
from core.events.subjects import (
    Namespace,
    StreamName,
    cross_subject,
    territory_stream,
    territory_subject,
)
from tests.core.test_events_fixtures import EventTerritories, eventually, stored_messages

pytest_plugins = ["tests.core.test_events_fixtures"]


def test_realtime_user_subject_names_one_user_and_rejects_anything_else() -> None:
    user = uuid.uuid4()
    assert realtime_user_subject(user, "user", "followed") == f"rt.user.{user}.user.followed"
    assert realtime_user_subject(str(user), "session") == f"rt.user.{user}.session.*"
    for bad in ("*", ">", "a.b", "", f"{user}.x"):
        with pytest.raises(ValueError, match="Invalid user id"):
            realtime_user_subject(bad, "user", "followed")
    for domain, action in (("user", ">"), ("us.er", "followed"), ("user", "a b")):
        with pytest.raises(ValueError, match="Invalid event"):
            realtime_user_subject(user, domain, action)


async def test_an_audience_needs_an_event_with_a_domain(
    db: Database, event_territories: EventTerritories
) -> None:
    home, remote = event_territories.home.code, event_territories.remote.code
    with pytest.raises(ValueError, match="have an audience"):
        async with db.territory_session(home) as session:
            await enqueue(
                session,
                subject=cross_subject(home, remote, "greeted"),
                type="org.unityplan.test.greeted",
                source="/tests",
                data={},
                audience=[uuid.uuid4()],
            )


class _Listener:
    """Core NATS subscriptions of the test's own connection, each collecting what it receives."""

    def __init__(self, client: NatsClient, namespace: Namespace) -> None:
        self._client = client
        self._namespace = namespace
        self.received: dict[str, list[Msg]] = {}

    async def listen(self, subject: str) -> None:
        box = self.received.setdefault(subject, [])

        async def collect(message: Msg) -> None:
            box.append(message)

        await self._client.subscribe(self._namespace.wire_subject(subject), cb=collect)


@pytest.fixture
async def listener(settings: Settings) -> AsyncIterator[_Listener]:
    client = await nats.connect(settings.nats.url, name="realtime-tests")
    try:
        yield _Listener(client, Namespace.from_settings(settings.nats))
    finally:
        await client.close()


async def test_the_relay_sends_each_audience_member_a_live_copy_and_nobody_else(
    settings: Settings,
    db: Database,
    bus: EventBus,
    event_territories: EventTerritories,
    listener: _Listener,
) -> None:
    alice, bob, carol, sentinel = (uuid.uuid4() for _ in range(4))
    everyone = "rt.user.*.>"
    for subject in (
        everyone,
        realtime_user_subject(alice, "test"),
        realtime_user_subject(bob, "test", "greeted"),
        realtime_user_subject(carol, "test"),
    ):
        await listener.listen(subject)
    await listener._client.flush()

    code = event_territories.home.code
    async with db.territory_session(code) as session:
        greeted = await enqueue(
            session,
            subject=territory_subject(code, "test", "greeted"),
            type="org.unityplan.test.greeted",
            source="/tests/realtime",
            data={"to": [str(alice), str(bob)]},
            audience=[alice, bob, alice],  # a repeated member is sent one copy
        )
        unaddressed = await enqueue(
            session,
            subject=territory_subject(code, "test", "greeted"),
            type="org.unityplan.test.greeted",
            source="/tests/realtime",
            data={},
        )

    relay = OutboxRelay(settings, db, bus=bus, registry=CollectorRegistry())
    while await relay.run_once():
        pass
    # The same connection as the relay's, so once this arrives everything before it has too.
    done = realtime_user_subject(sentinel, "test", "done")
    [ack] = await bus.publish_live([OutgoingDocument(done, b"{}", str(uuid.uuid4()))])
    assert not isinstance(ack, Exception), ack
    await eventually(
        lambda: _arrived(listener.received[everyone], "done"), what="the sentinel event"
    )

    # Other tests of this run may send live events too: only this test's two events count.
    ours = {str(greeted.id), str(unaddressed.id)}
    live = [m for m in listener.received[everyone] if orjson.loads(m.data).get("id") in ours]
    wire = Namespace.from_settings(settings.nats).wire_subject
    assert sorted(m.subject for m in live) == sorted(
        wire(realtime_user_subject(user, "test", "greeted")) for user in (alice, bob)
    )
    assert {orjson.loads(m.data)["id"] for m in live} == {str(greeted.id)}
    assert all("audience" not in (m.headers or {}) for m in live)
    assert len(listener.received[realtime_user_subject(alice, "test")]) == 1
    assert len(listener.received[realtime_user_subject(bob, "test", "greeted")]) == 1
    assert listener.received[realtime_user_subject(carol, "test")] == []

    # The durable stream holds both events on their territory subject, as before.
    stream = Namespace.from_settings(settings.nats).stream(territory_stream(code))
    stored = {m.event_id: m.subject for m in await stored_messages(bus, stream)}
    assert stored[str(greeted.id)] == wire(territory_subject(code, "test", "greeted"))
    assert str(unaddressed.id) in stored
    # The realtime stream keeps each copy once, under an id of its own.
    realtime = Namespace.from_settings(settings.nats).stream(StreamName.REALTIME)
    copies = [m for m in await stored_messages(bus, realtime) if m.event_id == str(greeted.id)]
    assert sorted(m.headers["Nats-Msg-Id"] for m in copies) == sorted(
        f"{greeted.id}:{user}" for user in (alice, bob)
    )


async def _arrived(messages: list[Msg], action: str) -> bool:
    await asyncio.sleep(0)
    return any(m.subject.endswith(f".{action}") for m in messages)
