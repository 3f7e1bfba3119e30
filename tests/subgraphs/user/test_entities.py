"""`_entities` for `User`: a batch of representations costs the same few queries whatever its
size, across territories on two pods."""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from tests.subgraphs.user.conftest import Person, Territories, UserApp, follow

ENTITIES = """
query($reps: [_Any!]!) {
  _entities(representations: $reps) {
    ... on User {
      id profile { about visibility } followerCount followingCount viewerFollows
      followers(first: 2) { totalCount edges { node { id } } }
      following(first: 2) { totalCount edges { node { id } } }
    }
  }
}
"""


@contextmanager
def counting_statements(app: UserApp) -> Iterator[list[str]]:
    statements: list[str] = []
    engines = [app.runtime.db.engine(pod).sync_engine for pod in app.runtime.db.pods]

    def record(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
        # The territory registry is re-read when its short test TTL expires: a cache refresh,
        # not a cost of the batch.
        if "global.territories" not in statement:
            statements.append(statement)

    for engine in engines:
        event.listen(engine, "before_cursor_execute", record)
    try:
        yield statements
    finally:
        for engine in engines:
            event.remove(engine, "before_cursor_execute", record)


async def test_batches_cost_a_constant_number_of_queries(
    user_app: UserApp, territories: Territories
) -> None:
    viewer = await user_app.people.create(territories.home.code)

    async def batch(size: int) -> list[Person]:
        people = []
        for n in range(size):
            code = territories.home.code if n % 2 else territories.remote.code
            people.append(await user_app.people.create(code))
        return people

    counts = []
    for people in (await batch(10), await batch(100)):
        # Every user follows the one before: lists are not empty.
        for before, after in itertools.pairwise(people):
            await follow(user_app, after, before)
        reps = [{"__typename": "User", "id": p.id} for p in people]
        # Profiles come from each registration's event or, if it is still on its way, from
        # the first read: read once first, so both batches are counted with every profile in.
        await user_app.client(viewer).data(ENTITIES, {"reps": reps})
        with counting_statements(user_app) as statements:
            data = await user_app.client(viewer).data(ENTITIES, {"reps": reps})
        assert [e["id"] for e in data["_entities"]] == [p.id for p in people]
        assert all(e["profile"]["visibility"] == "PUBLIC" for e in data["_entities"])
        entities = data["_entities"]
        assert [e["followers"]["totalCount"] for e in entities] == [1] * (len(people) - 1) + [0]
        assert entities[0]["followers"]["edges"] == [{"node": {"id": people[1].id}}]
        assert entities[-1]["following"]["edges"] == [{"node": {"id": people[-2].id}}]
        counts.append(len(statements))
    assert counts[0] == counts[1], counts
    # One identity lookup for the whole batch (a global session: search path, select), the
    # viewer's blocks (search path, select), then per territory: a session for profiles (search
    # path, select; creating missing ones would add two) and the viewer's relationships, one
    # for the two counts, and one per list field (search path, totals, ranked page).
    assert counts[1] <= 2 + 2 + 2 * (5 + 3 + 2 * 3), counts


async def test_unknown_and_malformed_ids_resolve_to_empty_users(
    user_app: UserApp, territories: Territories
) -> None:
    reps = [
        {"__typename": "User", "id": "00000000-0000-0000-0000-000000000000"},
        {"__typename": "User", "id": "not-a-uuid"},
    ]
    data = await user_app.client().data(ENTITIES, {"reps": reps})
    assert [e["profile"] for e in data["_entities"]] == [None, None]
    assert [e["followerCount"] for e in data["_entities"]] == [0, 0]
