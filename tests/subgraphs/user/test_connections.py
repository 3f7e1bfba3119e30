"""Follows through the real app: the original's connection cases, cursors, privacy of the lists,
and a follow between two territories on two pods."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

from sqlalchemy import select

from subgraphs.user.models import UserConnection
from tests.subgraphs.user.conftest import (
    FOLLOW,
    UNFOLLOW,
    Person,
    Territories,
    UserApp,
    block,
    follow,
    set_visibility,
)

LISTS = """
query($reps: [_Any!]!, $first: Int, $after: String) {
  _entities(representations: $reps) {
    ... on User {
      id followerCount followingCount viewerFollows viewerBlocked
      followers(first: $first, after: $after) {
        totalCount pageInfo { hasNextPage endCursor } edges { cursor followedAt node { id } }
      }
      following(first: $first) { totalCount edges { node { id } } }
    }
  }
}
"""


async def lists(
    app: UserApp, viewer: Person | None, owner: Person, **variables: Any
) -> dict[str, Any]:
    reps = [{"__typename": "User", "id": owner.id}]
    data = await app.client(viewer).data(LISTS, {"reps": reps, **variables})
    user: dict[str, Any] = data["_entities"][0]
    return user


def ids(connection: dict[str, Any]) -> list[str]:
    return [edge["node"]["id"] for edge in connection["edges"]]


async def test_follow(user_app: UserApp, territories: Territories) -> None:
    a = await user_app.people.create(territories.home.code)
    b = await user_app.people.create(territories.home.code)
    followed = (await user_app.client(a).data(FOLLOW, {"id": b.id}))["follow"]
    assert followed == {"id": b.id, "viewerFollows": True}
    seen = await lists(user_app, a, b)
    assert seen["followerCount"] == 1
    assert ids(seen["followers"]) == [a.id]
    assert (await lists(user_app, a, a))["followingCount"] == 1


async def test_unfollow(user_app: UserApp, territories: Territories) -> None:
    a = await user_app.people.create(territories.home.code)
    b = await user_app.people.create(territories.home.code)
    await follow(user_app, a, b)
    assert (await user_app.client(a).data(UNFOLLOW, {"id": b.id}))["unfollow"] is True
    assert (await user_app.client(a).data(UNFOLLOW, {"id": b.id}))["unfollow"] is False
    seen = await lists(user_app, a, b)
    assert seen["followerCount"] == 0
    assert seen["viewerFollows"] is False


async def test_followers_and_following_newest_first(
    user_app: UserApp, territories: Territories
) -> None:
    star = await user_app.people.create(territories.home.code)
    fans = [await user_app.people.create(territories.home.code) for _ in range(3)]
    for fan in fans:
        await follow(user_app, fan, star)
    seen = await lists(user_app, None, star)
    assert ids(seen["followers"]) == [fan.id for fan in reversed(fans)]
    assert seen["followers"]["totalCount"] == 3
    times = [edge["followedAt"] for edge in seen["followers"]["edges"]]
    assert times == sorted(times, reverse=True)
    fan = fans[0]
    others = [await user_app.people.create(territories.home.code) for _ in range(2)]
    for other in others:
        await follow(user_app, fan, other)
    assert ids((await lists(user_app, None, fan))["following"]) == [
        others[1].id,
        others[0].id,
        star.id,
    ]


async def test_mutual_follow(user_app: UserApp, territories: Territories) -> None:
    a = await user_app.people.create(territories.home.code)
    b = await user_app.people.create(territories.home.code)
    await follow(user_app, a, b)
    await follow(user_app, b, a)
    for me, other in ((a, b), (b, a)):
        seen = await lists(user_app, me, me)
        assert ids(seen["followers"]) == [other.id]
        assert ids(seen["following"]) == [other.id]
        assert (await lists(user_app, me, other))["viewerFollows"] is True


async def test_duplicate_follow_returns_the_existing_one(
    user_app: UserApp, territories: Territories
) -> None:
    a = await user_app.people.create(territories.home.code)
    b = await user_app.people.create(territories.home.code)
    await follow(user_app, a, b)
    first = (await lists(user_app, a, b))["followers"]["edges"][0]["followedAt"]
    again = await user_app.client(a).data(FOLLOW, {"id": b.id})
    assert again["follow"]["viewerFollows"] is True
    seen = await lists(user_app, a, b)
    assert seen["followerCount"] == 1
    assert seen["followers"]["edges"][0]["followedAt"] == first


async def test_empty_lists(user_app: UserApp, territories: Territories) -> None:
    loner = await user_app.people.create(territories.home.code)
    seen = await lists(user_app, loner, loner)
    assert seen["followers"] == {
        "totalCount": 0,
        "pageInfo": {"hasNextPage": False, "endCursor": None},
        "edges": [],
    }
    assert seen["following"] == {"totalCount": 0, "edges": []}
    assert (seen["followerCount"], seen["followingCount"]) == (0, 0)


async def test_self_follow_and_unknown_users_are_refused(
    user_app: UserApp, territories: Territories
) -> None:
    a = await user_app.people.create(territories.home.code)
    own = await user_app.client(a).error(FOLLOW, {"id": a.id})
    assert own["extensions"] == {"code": "BAD_USER_INPUT", "field": "userId"}
    nobody = await user_app.client(a).error(FOLLOW, {"id": str(uuid.uuid4())})
    assert nobody["extensions"]["code"] == "NOT_FOUND"
    garbage = await user_app.client(a).error(FOLLOW, {"id": "not-a-uuid"})
    assert garbage["extensions"]["code"] == "BAD_USER_INPUT"
    anonymous = await user_app.client().error(FOLLOW, {"id": a.id})
    assert anonymous["extensions"]["code"] == "UNAUTHENTICATED"


async def test_pages_are_stable_under_concurrent_follows(
    user_app: UserApp, territories: Territories
) -> None:
    star = await user_app.people.create(territories.home.code)
    fans = [await user_app.people.create(territories.home.code) for _ in range(12)]
    for fan in fans:
        await follow(user_app, fan, star)
    late = [await user_app.people.create(territories.home.code) for _ in range(6)]
    seen: list[str] = []
    after: str | None = None
    pages = 0
    while True:
        page = (await lists(user_app, None, star, first=5, after=after))["followers"]
        seen += ids(page)
        pages += 1
        if pages <= 2:
            # New followers arrive while the client is paging, all at once.
            batch = late[(pages - 1) * 3 : pages * 3]
            await asyncio.gather(*(follow(user_app, fan, star) for fan in batch))
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    # Every follower from before paging started, once each, newest first; the late ones are
    # newer than the first page and never shift the pages that follow.
    assert seen == [fan.id for fan in reversed(fans)]
    assert (await lists(user_app, None, star))["followerCount"] == 18


async def test_page_size_is_checked(user_app: UserApp, territories: Territories) -> None:
    a = await user_app.people.create(territories.home.code)
    error = await user_app.client().error(
        LISTS, {"reps": [{"__typename": "User", "id": a.id}], "first": 0}
    )
    assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "first"}
    bad_cursor = await user_app.client().error(
        LISTS, {"reps": [{"__typename": "User", "id": a.id}], "after": "bm90IGEgY3Vyc29y"}
    )
    assert bad_cursor["extensions"] == {"code": "BAD_USER_INPUT", "field": "after"}


async def test_follower_lists_respect_privacy_and_blocks(
    user_app: UserApp, territories: Territories
) -> None:
    owner = await user_app.people.create(territories.home.code)
    fan = await user_app.people.create(territories.home.code)
    stranger = await user_app.people.create(territories.home.code)
    rude = await user_app.people.create(territories.home.code)
    await follow(user_app, fan, owner)
    await follow(user_app, rude, owner)
    # A user who blocked the viewer never appears in the viewer's lists.
    await block(user_app, rude, stranger)
    assert ids((await lists(user_app, stranger, owner))["followers"]) == [fan.id]
    await set_visibility(user_app, owner, "CONNECTIONS")
    hidden = await lists(user_app, stranger, owner)
    assert hidden["followers"]["edges"] == []
    assert hidden["followerCount"] == 0
    assert len((await lists(user_app, fan, owner))["followers"]["edges"]) == 2
    await set_visibility(user_app, owner, "PRIVATE")
    assert (await lists(user_app, fan, owner))["followers"]["totalCount"] == 0
    assert (await lists(user_app, owner, owner))["followers"]["totalCount"] == 2


async def test_follow_across_territories_is_stored_on_both_sides(
    user_app: UserApp, territories: Territories
) -> None:
    here = await user_app.people.create(territories.home.code)
    there = await user_app.people.create(territories.remote.code)
    await follow(user_app, here, there)
    assert ids((await lists(user_app, here, there))["followers"]) == [here.id]
    assert ids((await lists(user_app, there, here))["following"]) == [there.id]
    await set_visibility(user_app, there, "CONNECTIONS")
    # The remote territory knows the follow, so CONNECTIONS lets the follower in.
    assert (await lists(user_app, here, there))["followerCount"] == 1
    for code, remote in (
        (territories.home.code, territories.remote.code),
        (territories.remote.code, territories.home.code),
    ):
        async with user_app.db.territory_session(code) as session:
            rows = (
                await session.execute(
                    select(UserConnection.remote_territory).where(
                        UserConnection.follower_id == uuid.UUID(here.id),
                        UserConnection.following_id == uuid.UUID(there.id),
                    )
                )
            ).all()
        assert [row[0] for row in rows] == [remote]
    assert (await user_app.client(here).data(UNFOLLOW, {"id": there.id}))["unfollow"] is True
    for code in (territories.home.code, territories.remote.code):
        async with user_app.db.territory_session(code) as session:
            left = await session.execute(
                select(UserConnection).where(UserConnection.follower_id == uuid.UUID(here.id))
            )
            assert left.all() == []
