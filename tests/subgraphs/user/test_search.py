"""searchUsers through the real app: folding of case and accents, substrings, privacy, blocks,
cursor pages, and the index that serves it."""

from __future__ import annotations

import uuid
from typing import Any

from sqlalchemy import text

from core.config import Settings
from core.db.provisioning import create_territory
from subgraphs.user.search import search_statements
from tests.subgraphs.user.conftest import (
    Person,
    Territories,
    UserApp,
    block,
    follow,
    set_visibility,
)

SEARCH = """
query($q: String!, $first: Int, $after: String, $territories: [ID!]) {
  searchUsers(query: $q, first: $first, after: $after, territoryCodes: $territories) {
    totalCount pageInfo { hasNextPage endCursor } edges { cursor node { id } }
  }
}
"""


async def search(
    app: UserApp, viewer: Person | None, query: str, **variables: Any
) -> dict[str, Any]:
    data = await app.client(viewer).data(SEARCH, {"q": query, **variables})
    result: dict[str, Any] = data["searchUsers"]
    return result


def found(result: dict[str, Any]) -> set[str]:
    return {edge["node"]["id"] for edge in result["edges"]}


async def test_search_folds_case_and_accents_and_matches_substrings(
    user_app: UserApp, territories: Territories
) -> None:
    tag = uuid.uuid4().hex[:8]
    code = territories.home.code
    soren = await user_app.people.create(
        code, username=f"k{tag}_sk", display_name="Søren Kierkegård"
    )
    viewer = await user_app.people.create(code)
    for query in (f"K{tag}", f"{tag}_S", "SØREN KIERKEGARD", "soren kierk", "ierkegå"):
        result = await search(user_app, viewer, query)
        assert soren.id in found(result), query
    assert soren.id not in found(await search(user_app, viewer, f"{tag}zzz"))


async def test_search_respects_privacy(user_app: UserApp, territories: Territories) -> None:
    tag = uuid.uuid4().hex[:8]
    code = territories.home.code
    public = await user_app.people.create(code, username=f"pub{tag}")
    connections = await user_app.people.create(code, username=f"con{tag}")
    private = await user_app.people.create(code, username=f"pri{tag}")
    fan = await user_app.people.create(code)
    stranger = await user_app.people.create(code)
    await set_visibility(user_app, connections, "CONNECTIONS")
    await set_visibility(user_app, private, "PRIVATE")
    await follow(user_app, fan, connections)
    await follow(user_app, fan, private)
    assert found(await search(user_app, stranger, tag)) == {public.id}
    assert found(await search(user_app, fan, tag)) == {public.id, connections.id}
    assert found(await search(user_app, private, tag)) == {public.id, private.id}
    signed_out = await search(user_app, None, tag, territories=[code])
    assert found(signed_out) == {public.id}
    assert signed_out["totalCount"] == 1


async def test_search_hides_blocked_users_both_ways(
    user_app: UserApp, territories: Territories
) -> None:
    tag = uuid.uuid4().hex[:8]
    code = territories.home.code
    viewer = await user_app.people.create(code)
    blocked = await user_app.people.create(code, username=f"bd{tag}")
    blocker = await user_app.people.create(code, username=f"br{tag}")
    visible = await user_app.people.create(code, username=f"ok{tag}")
    await block(user_app, viewer, blocked)
    await block(user_app, blocker, viewer)
    assert found(await search(user_app, viewer, tag)) == {visible.id}


async def test_search_pages_with_cursors(user_app: UserApp, territories: Territories) -> None:
    tag = uuid.uuid4().hex[:8]
    code = territories.home.code
    people = [await user_app.people.create(code, username=f"m{n}{tag}") for n in range(5)]
    viewer = await user_app.people.create(code)
    seen: list[str] = []
    after = None
    while True:
        page = await search(user_app, viewer, tag, first=2, after=after)
        assert page["totalCount"] == 5
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [p.id for p in people]  # username order, each once


async def test_search_input_is_checked(user_app: UserApp, territories: Territories) -> None:
    viewer = await user_app.people.create(territories.home.code)
    for query in ("", "   ", "x" * 101):
        error = await user_app.client(viewer).error(SEARCH, {"q": query})
        assert error["extensions"] == {"code": "BAD_USER_INPUT", "field": "query"}
    anonymous = await user_app.client().error(SEARCH, {"q": "abc"})
    assert anonymous["extensions"] == {"code": "BAD_USER_INPUT", "field": "territoryCodes"}
    unknown = await user_app.client(viewer).error(SEARCH, {"q": "abc", "territories": ["zz-none"]})
    assert unknown["extensions"]["code"] == "NOT_FOUND"
    # LIKE wildcards in the query are plain characters.
    assert found(await search(user_app, viewer, "%")) == set()


async def test_search_is_served_by_the_trigram_index(
    user_app: UserApp, territories: Territories
) -> None:
    async with user_app.db.territory_session(territories.home.code) as session:
        # With sequential scans priced out, the plan shows whether an index can answer at all
        # (on a small table the planner would rightly prefer a scan).
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = await session.execute(
            text(
                "EXPLAIN SELECT id FROM users WHERE user_search_key(username || ' ' || "
                "coalesce(display_name, '')) LIKE user_search_key(:pattern) ESCAPE '\\'"
            ),
            {"pattern": "%soren%"},
        )
        lines = "\n".join(row[0] for row in plan)
    assert "ix_users_search_trgm" in lines, lines


async def test_search_across_territories_merges_pages_in_one_order(
    user_app: UserApp, territories: Territories
) -> None:
    tag = uuid.uuid4().hex[:8]
    home, remote = territories.home.code, territories.remote.code
    people = [
        await user_app.people.create(home if n % 2 else remote, username=f"x{n}{tag}")
        for n in range(6)
    ]
    viewer = await user_app.people.create(home)
    assert len(found(await search(user_app, viewer, tag))) == 3  # the viewer's territory only
    seen: list[str] = []
    after = None
    while True:
        page = await search(user_app, viewer, tag, first=4, after=after, territories=[home, remote])
        assert page["totalCount"] == 6
        seen += [edge["node"]["id"] for edge in page["edges"]]
        if not page["pageInfo"]["hasNextPage"]:
            break
        after = page["pageInfo"]["endCursor"]
    assert seen == [p.id for p in people]


async def test_search_stays_on_the_index_with_a_hundred_thousand_users(
    user_app: UserApp, user_settings: Settings
) -> None:
    """At the size the platform promises per territory, the planner itself (nothing priced out)
    answers a search from the trigram index, not by scanning the users."""
    code = "us" + uuid.uuid4().hex[:6]
    db = user_app.db
    await create_territory(user_settings, db, code=code, name="Crowded land", type="country")
    async with db.territory_session(code) as session:
        await session.execute(
            text(
                "INSERT INTO users (username, password_hash, display_name) "
                "SELECT 'member_' || n, '!', 'Member ' || n "
                "FROM generate_series(1, 100000) AS n"
            )
        )
    async with db.territory_session(code) as session:
        await session.execute(text("ANALYZE users"))
        _, page = search_statements("r_4242", viewer_id=None, hidden=(), after=None, limit=20)
        compiled = page.compile(
            dialect=session.bind.dialect, compile_kwargs={"literal_binds": True}
        )
        plan = await session.execute(text(f"EXPLAIN (ANALYZE, BUFFERS) {compiled}"))
        lines = "\n".join(row[0] for row in plan)
    assert "Bitmap Index Scan on ix_users_search_trgm" in lines, lines
    assert "Seq Scan on users" not in lines, lines
