"""The live feed of subscriptions: events from the moment one listens, each to the listeners
whose subject filter it matches, read from JetStream (its resumption across a NATS restart is
shown in `tests/faults/test_service_outages.py`)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator

import pytest

from core.config import Settings
from core.events import Event, EventBus, realtime_user_subject
from core.events.bus import OutgoingDocument
from core.events.live import LiveFeed, subject_matches
from core.events.subjects import territory_subject
from tests.core.test_events_fixtures import EventTerritories, eventually

pytest_plugins = ["tests.core.test_events_fixtures"]


def test_subject_filters_match_as_nats_does() -> None:
    assert subject_matches("rt.user.a.user.*", "rt.user.a.user.followed")
    assert not subject_matches("rt.user.a.user.*", "rt.user.a.user.followed.more")
    assert subject_matches("rt.user.a.>", "rt.user.a.session.revoked")
    assert not subject_matches("rt.user.a.>", "rt.user.a")
    assert not subject_matches("rt.user.a.user.*", "rt.user.b.user.followed")
    assert subject_matches("territory.dk.user.registered", "territory.dk.user.registered")


def _copy(user: uuid.UUID, action: str) -> OutgoingDocument:
    event = Event(
        subject=territory_subject("dk", "user", action),
        type=f"org.unityplan.test.{action}",
        source="/tests/live",
        data={"user": str(user)},
    )
    subject = realtime_user_subject(user, "user", action)
    return OutgoingDocument(subject, event.to_bytes(), f"{event.id}:{user}")


async def _listening(feed: LiveFeed, count: int) -> bool:
    await asyncio.sleep(0)
    return feed.listening >= count


async def _next(events: AsyncGenerator[Event, None]) -> Event:
    return await asyncio.wait_for(anext(events), 10)


async def test_listeners_get_what_matches_them_from_the_moment_they_listen(
    settings: Settings, bus: EventBus, event_territories: EventTerritories
) -> None:
    await bus.ensure_streams([])
    alice, bob = uuid.uuid4(), uuid.uuid4()
    feed = LiveFeed(settings.nats, "live-feed-tests")
    await bus.publish_live([_copy(alice, "followed")])  # before anyone listens: never seen
    everything = feed.events(realtime_user_subject(alice, "user"))
    follows = feed.events(realtime_user_subject(alice, "user", "followed"))
    try:
        first = asyncio.ensure_future(_next(everything))
        followed = asyncio.ensure_future(_next(follows))
        await eventually(lambda: _listening(feed, 2), what="both listeners")
        sent = [_copy(bob, "followed"), _copy(alice, "updated"), _copy(alice, "followed")]
        await bus.publish_live(sent)
        assert (await first).type == "org.unityplan.test.updated"
        assert (await _next(everything)).type == "org.unityplan.test.followed"
        assert (await followed).data == {"user": str(alice)}
    finally:
        await everything.aclose()
        await follows.aclose()
        await feed.close()
    assert feed.listening == 0


async def test_a_territory_subject_is_read_from_its_stream(
    settings: Settings, bus: EventBus, event_territories: EventTerritories
) -> None:
    code = event_territories.home.code
    await bus.ensure_territory_stream(code)
    feed = LiveFeed(settings.nats, "live-feed-tests")
    events = feed.events(territory_subject(code, "user", "registered"))
    try:
        waiting = asyncio.ensure_future(_next(events))
        await eventually(lambda: _listening(feed, 1), what="the listener")
        event = Event(
            subject=territory_subject(code, "user", "registered"),
            type="org.unityplan.test.registered",
            source="/tests/live",
            data={},
        )
        await bus.publish(event)
        assert (await waiting).id == event.id
    finally:
        await events.aclose()
        await feed.close()


def test_only_realtime_and_territory_subjects_have_a_feed(settings: Settings) -> None:
    feed = LiveFeed(settings.nats, "live-feed-tests")
    with pytest.raises(ValueError, match="No live feed"):
        feed._stream_of("global.identity.created")


async def test_without_nats_a_subscription_is_refused_as_an_outage(settings: Settings) -> None:
    from core.errors import ServiceUnavailable
    from unityplan.devstack import free_port

    away = settings.replace(NATS_URL=f"nats://127.0.0.1:{free_port()}")
    feed = LiveFeed(away.nats, "live-feed-tests")
    events = feed.events(realtime_user_subject(uuid.uuid4(), "user"))
    with pytest.raises(ServiceUnavailable) as refused:
        await anext(events)
    assert refused.value.extensions["retryAfter"] >= 1
    assert feed.listening == 0
