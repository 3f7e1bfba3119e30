"""Blocks through the real app: the original's block cases, in one territory and across two."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import select

from subgraphs.user.models import UserBlock
from tests.subgraphs.user.conftest import (
    BLOCK,
    FOLLOW,
    UNBLOCK,
    Person,
    Territories,
    UserApp,
    block,
    follow,
)

BLOCKED = "{ blockedUsers { user { id } reason blockedAt } }"
RELATION = """
query($reps: [_Any!]!) {
  _entities(representations: $reps) {
    ... on User { viewerFollows viewerBlocked followerCount followingCount }
  }
}
"""


async def blocked_users(app: UserApp, who: Person) -> list[dict[str, Any]]:
    data = await app.client(who).data(BLOCKED)
    result: list[dict[str, Any]] = data["blockedUsers"]
    return result


async def relation(app: UserApp, viewer: Person, other: Person) -> dict[str, Any]:
    data = await app.client(viewer).data(
        RELATION, {"reps": [{"__typename": "User", "id": other.id}]}
    )
    result: dict[str, Any] = data["_entities"][0]
    return result


async def test_block(user_app: UserApp, territories: Territories) -> None:
    a = await user_app.people.create(territories.home.code)
    b = await user_app.people.create(territories.home.code)
    assert (await user_app.client(a).data(BLOCK, {"id": b.id, "reason": "spam"}))["block"] is True
    listed = await blocked_users(user_app, a)
    assert [(x["user"]["id"], x["reason"]) for x in listed] == [(b.id, "spam")]
    assert (await relation(user_app, a, b))["viewerBlocked"] is True


async def test_unblock(user_app: UserApp, territories: Territories) -> None:
    a = await user_app.people.create(territories.home.code)
    b = await user_app.people.create(territories.home.code)
    await block(user_app, a, b)
    assert (await user_app.client(a).data(UNBLOCK, {"id": b.id}))["unblock"] is True
    assert (await user_app.client(a).data(UNBLOCK, {"id": b.id}))["unblock"] is False
    assert await blocked_users(user_app, a) == []
    await follow(user_app, b, a)  # allowed again


async def test_block_removes_follows_both_ways(user_app: UserApp, territories: Territories) -> None:
    a = await user_app.people.create(territories.home.code)
    b = await user_app.people.create(territories.home.code)
    await follow(user_app, a, b)
    await follow(user_app, b, a)
    await block(user_app, a, b)
    await user_app.client(a).data(UNBLOCK, {"id": b.id})
    for viewer, other in ((a, b), (b, a)):
        seen = await relation(user_app, viewer, other)
        assert seen["viewerFollows"] is False
        assert (seen["followerCount"], seen["followingCount"]) == (0, 0)


async def test_blocked_list_is_newest_first(user_app: UserApp, territories: Territories) -> None:
    a = await user_app.people.create(territories.home.code)
    others = [await user_app.people.create(territories.home.code) for _ in range(3)]
    for other in others:
        await block(user_app, a, other)
    listed = await blocked_users(user_app, a)
    assert [x["user"]["id"] for x in listed] == [o.id for o in reversed(others)]
    times = [x["blockedAt"] for x in listed]
    assert times == sorted(times, reverse=True)


async def test_mutual_blocks(user_app: UserApp, territories: Territories) -> None:
    a = await user_app.people.create(territories.home.code)
    b = await user_app.people.create(territories.home.code)
    await block(user_app, a, b, "first")
    await block(user_app, b, a, "second")
    assert [x["reason"] for x in await blocked_users(user_app, a)] == ["first"]
    assert [x["reason"] for x in await blocked_users(user_app, b)] == ["second"]
    await user_app.client(a).data(UNBLOCK, {"id": b.id})
    # B's block still stands: neither may follow the other.
    for who, whom in ((a, b), (b, a)):
        error = await user_app.client(who).error(FOLLOW, {"id": whom.id})
        assert error["extensions"]["code"] == "FORBIDDEN"


async def test_reblocking_updates_the_reason(user_app: UserApp, territories: Territories) -> None:
    a = await user_app.people.create(territories.home.code)
    b = await user_app.people.create(territories.home.code)
    await block(user_app, a, b, "noise")
    await block(user_app, a, b, "harassment")
    listed = await blocked_users(user_app, a)
    assert [(x["user"]["id"], x["reason"]) for x in listed] == [(b.id, "harassment")]


async def test_empty_block_list(user_app: UserApp, territories: Territories) -> None:
    a = await user_app.people.create(territories.home.code)
    assert await blocked_users(user_app, a) == []
    anonymous = await user_app.client().error(BLOCKED)
    assert anonymous["extensions"]["code"] == "UNAUTHENTICATED"


async def test_block_prevents_follow_in_either_direction(
    user_app: UserApp, territories: Territories
) -> None:
    a = await user_app.people.create(territories.home.code)
    b = await user_app.people.create(territories.home.code)
    await block(user_app, a, b)
    for who, whom in ((a, b), (b, a)):
        error = await user_app.client(who).error(FOLLOW, {"id": whom.id})
        assert error["extensions"]["code"] == "FORBIDDEN"
    self_block = await user_app.client(a).error(BLOCK, {"id": a.id})
    assert self_block["extensions"] == {"code": "BAD_USER_INPUT", "field": "userId"}
    long_reason = await user_app.client(a).error(BLOCK, {"id": b.id, "reason": "x" * 501})
    assert long_reason["extensions"] == {"code": "BAD_USER_INPUT", "field": "reason"}


async def test_block_across_territories(user_app: UserApp, territories: Territories) -> None:
    here = await user_app.people.create(territories.home.code)
    there = await user_app.people.create(territories.remote.code)
    await follow(user_app, there, here)
    await block(user_app, here, there, "private note")
    error = await user_app.client(there).error(FOLLOW, {"id": here.id})
    assert error["extensions"]["code"] == "FORBIDDEN"
    assert (await relation(user_app, here, there))["followingCount"] == 0
    # The reason is the blocker's note: it stays in the blocker's territory.
    reasons = {}
    for code in (territories.home.code, territories.remote.code):
        async with user_app.db.territory_session(code) as session:
            rows = await session.execute(
                select(UserBlock.reason).where(UserBlock.blocker_id == uuid.UUID(here.id))
            )
            reasons[code] = [row[0] for row in rows]
    assert reasons == {territories.home.code: ["private note"], territories.remote.code: [None]}
    assert (await user_app.client(here).data(UNBLOCK, {"id": there.id}))["unblock"] is True
    await follow(user_app, there, here)


async def test_a_follow_racing_a_block_never_survives_it(
    user_app: UserApp, territories: Territories
) -> None:
    for remote in (False, True):
        blocker = await user_app.people.create(territories.home.code)
        code = territories.remote.code if remote else territories.home.code
        follower = await user_app.people.create(code)
        follow_body = user_app.client(follower).execute(FOLLOW, {"id": blocker.id})
        block_body = user_app.client(blocker).execute(BLOCK, {"id": follower.id, "reason": None})
        followed, blocked = await asyncio.gather(follow_body, block_body)
        assert blocked["data"] == {"block": True}
        # Whichever ran first, the block stands and no follow is left behind it.
        if followed.get("errors"):
            assert followed["errors"][0]["extensions"]["code"] == "FORBIDDEN"
        seen = await relation(user_app, blocker, follower)
        assert seen["followingCount"] == 0
        assert (await relation(user_app, follower, blocker))["viewerFollows"] is False
