"""Events of the user subgraph: what it writes to the outbox, and its durable consumers of the
auth subgraph's `user.registered` and `user.deleted` over real NATS."""

from __future__ import annotations

import asyncio
import io
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any

import orjson
import pytest
from PIL import Image
from sqlalchemy import delete, func, or_, select

from core.config import Settings
from core.db.provisioning import create_territory
from core.db.tables import outbox, processed_events
from core.events import Event, EventBus
from core.events.fanout import TerritoryConsumers
from core.events.subjects import territory_subject
from subgraphs.user.models import UserBlock, UserConnection, UserProfile
from tests.subgraphs.user.conftest import (
    UNFOLLOW,
    UPDATE_PROFILE,
    Territories,
    UserApp,
    accounts,
    block,
    follow,
    serving,
)


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
async def evented_app(user_settings: Settings, territories: Territories) -> AsyncIterator[UserApp]:
    """The app with its outbox relay and account-event consumers running."""
    async with serving(user_settings) as app:
        yield app


@pytest.fixture
async def bus(user_settings: Settings) -> AsyncIterator[EventBus]:
    bus = EventBus(user_settings)
    await bus.connect()
    try:
        yield bus
    finally:
        await bus.close()


async def outbox_events(app: UserApp, territory: str, user_id: str) -> list[dict[str, Any]]:
    async with app.db.territory_session(territory) as session:
        rows = await session.execute(select(outbox.c.payload).order_by(outbox.c.created_at))
        return [p for (p,) in rows if user_id in orjson.dumps(p.get("data")).decode()]


async def test_changes_are_announced_through_the_outbox(
    evented_app: UserApp, territories: Territories
) -> None:
    home, remote = territories.home.code, territories.remote.code
    a = await evented_app.people.create(home)
    b = await evented_app.people.create(home)
    far = await evented_app.people.create(remote)
    await evented_app.client(a).data(UPDATE_PROFILE, {"input": {"visibility": "CONNECTIONS"}})
    await follow(evented_app, b, a)
    await evented_app.client(b).data(UNFOLLOW, {"id": a.id})
    await block(evented_app, a, b)
    await follow(evented_app, a, far)
    subjects = [e["subject"] for e in await outbox_events(evented_app, home, a.id)]
    # Events of one transaction share its timestamp: compare without their order.
    assert sorted(subjects) == sorted(
        [
            f"territory.{home}.user.profile_updated",
            f"territory.{home}.user.privacy_changed",
            f"territory.{home}.user.followed",
            f"territory.{home}.user.unfollowed",
            f"territory.{home}.user.blocked",
            f"territory.{home}.user.followed",
            f"cross.{home}.{remote}.user_followed",
        ]
    )

    # The relay publishes them: the outbox drains.
    async def drained() -> bool:
        async with evented_app.db.territory_session(home) as session:
            pending = await session.execute(
                select(func.count()).select_from(outbox).where(outbox.c.sent_at.is_(None))
            )
            return pending.scalar_one() == 0

    await eventually(drained)


async def publish_account_event(
    bus: EventBus, territory: str, action: str, user_id: str, *, copies: int = 1
) -> Event:
    event = Event(
        type=f"unityplan.user.{action}",
        source="unityplan/auth",
        subject=territory_subject(territory, "user", action),
        data={"userId": user_id, "territoryCode": territory},
        territory=territory,
    )
    for _ in range(copies):
        # A fresh message id each time: JetStream keeps both, as after a lost acknowledgement.
        await bus.publish_document(event.subject, event.to_dict(), event_id=str(uuid.uuid4()))
    return event


async def test_registered_event_delivered_twice_creates_the_profile_once(
    evented_app: UserApp, territories: Territories, bus: EventBus
) -> None:
    home = territories.home.code
    newcomer = await evented_app.people.create(home)
    event = await publish_account_event(bus, home, "registered", newcomer.id, copies=2)
    durable = f"user-profiles-registered-{home}"
    stream = bus.namespace.stream("TERRITORY_" + home.upper())

    async def settled() -> bool:
        info = await bus.js.consumer_info(stream, durable)
        return info.num_pending == 0 and info.num_ack_pending == 0 and info.delivered.stream_seq > 0

    await eventually(settled)
    async with evented_app.db.territory_session(home) as session:
        profiles = await session.execute(
            select(UserProfile.user_id).where(UserProfile.user_id == uuid.UUID(newcomer.id))
        )
        assert len(profiles.all()) == 1
        records = await session.execute(
            select(processed_events.c.consumer).where(processed_events.c.event_id == event.id)
        )
        assert [r[0] for r in records] == [durable]


def avatar_png() -> bytes:
    out = io.BytesIO()
    Image.new("RGB", (80, 80), (10, 120, 10)).save(out, format="PNG")
    return out.getvalue()


async def mentions(app: UserApp, territory: str, user_id: uuid.UUID) -> int:
    async with app.db.territory_session(territory) as session:
        total = 0
        for statement in (
            select(func.count()).select_from(UserProfile).where(UserProfile.user_id == user_id),
            select(func.count())
            .select_from(UserConnection)
            .where(
                or_(
                    UserConnection.follower_id == user_id,
                    UserConnection.following_id == user_id,
                )
            ),
            select(func.count())
            .select_from(UserBlock)
            .where(or_(UserBlock.blocker_id == user_id, UserBlock.blocked_id == user_id)),
        ):
            total += (await session.execute(statement)).scalar_one()
        return total


async def test_deleted_event_erases_everything_about_the_user(
    evented_app: UserApp, territories: Territories, bus: EventBus
) -> None:
    home, remote = territories.home.code, territories.remote.code
    leaving = await evented_app.people.create(home)
    friend = await evented_app.people.create(home)
    far = await evented_app.people.create(remote)
    far_blocker = await evented_app.people.create(remote)
    await follow(evented_app, leaving, friend)
    await follow(evented_app, friend, leaving)
    await follow(evented_app, leaving, far)
    await follow(evented_app, far, leaving)
    await block(evented_app, far_blocker, leaving)
    await block(evented_app, leaving, friend)  # ends the local follows, adds a block
    response = await evented_app.http.post(
        "/graphql",
        data={
            "operations": orjson.dumps(
                {
                    "query": "mutation($f: Upload!) { uploadAvatar(file: $f) { about } }",
                    "variables": {"f": None},
                }
            ).decode(),
            "map": '{"0": ["variables.f"]}',
        },
        files={"0": ("a.png", avatar_png(), "image/png")},
        headers={"Authorization": f"Bearer {leaving.token}"},
    )
    assert "errors" not in response.json()
    user_id = uuid.UUID(leaving.id)
    assert await mentions(evented_app, home, user_id) > 0
    assert await mentions(evented_app, remote, user_id) > 0
    avatar_dir = evented_app.avatar_dir / leaving.id
    assert any(avatar_dir.rglob("*.webp"))
    # What the auth subgraph does on deleteMyAccount: the account goes, then the event.
    async with evented_app.db.territory_session(home) as session:
        await session.execute(delete(accounts).where(accounts.c.id == user_id))
    await publish_account_event(bus, home, "deleted", leaving.id)

    async def erased() -> bool:
        return (
            await mentions(evented_app, home, user_id) == 0
            and await mentions(evented_app, remote, user_id) == 0
            and not avatar_dir.exists()
        )

    await eventually(erased)
    # The others keep what is theirs.
    assert await mentions(evented_app, remote, uuid.UUID(far.id)) > 0


async def test_probes_report_every_dependency(evented_app: UserApp) -> None:
    assert (await evented_app.http.get("/health")).json() == {"status": "ok"}
    ready = await evented_app.http.get("/ready")
    assert ready.status_code == 200
    checks = ready.json()["checks"]
    assert {"postgres:default", "redis", "nats"} <= set(checks)
    assert all(check["status"] == "ok" for check in checks.values())
    metrics = (await evented_app.http.get("/metrics")).text
    assert "user_http_requests_total{" in metrics
    assert 'route="/graphql"' in metrics


async def test_territories_provisioned_later_are_consumed_too(
    evented_app: UserApp, user_settings: Settings, bus: EventBus
) -> None:
    code = "un" + uuid.uuid4().hex[:6]
    await create_territory(
        user_settings, evented_app.db, code=code, name="Late land", type="country"
    )
    for fanout in evented_app.state.user_consumers:

        async def picked_up(fanout: TerritoryConsumers = fanout) -> bool:
            # By the consumers themselves, woken by the registry's change.
            return code in fanout.consumers

        await eventually(picked_up)
    newcomer = await evented_app.people.create(code)
    await publish_account_event(bus, code, "registered", newcomer.id)

    async def profile_exists() -> bool:
        async with evented_app.db.territory_session(code) as session:
            found = await session.execute(
                select(UserProfile.user_id).where(UserProfile.user_id == uuid.UUID(newcomer.id))
            )
            return found.first() is not None

    await eventually(profile_exists)
