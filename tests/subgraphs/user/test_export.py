"""The user subgraph's part of a data export: `DataExport.profile`, for the user themself only."""

from __future__ import annotations

from tests.subgraphs.user.conftest import Territories, UserApp, block, follow

EXPORT = """
query($reps: [_Any!]!) {
  _entities(representations: $reps) { ... on DataExport { userId profile } }
}
"""


async def test_export_holds_profile_follows_followers_and_blocks(
    user_app: UserApp, territories: Territories
) -> None:
    me = await user_app.people.create(territories.home.code)
    idol = await user_app.people.create(territories.remote.code)
    fan = await user_app.people.create(territories.home.code)
    pest = await user_app.people.create(territories.home.code)
    await user_app.client(me).data(
        'mutation { updateProfile(input: {about: "mine", skills: ["maps"]}) { about } }'
    )
    await follow(user_app, me, idol)
    await follow(user_app, fan, me)
    await block(user_app, me, pest, "noise")
    reps = {"reps": [{"__typename": "DataExport", "userId": me.id}]}
    exported = (await user_app.client(me).data(EXPORT, reps))["_entities"][0]
    assert exported["userId"] == me.id
    profile = exported["profile"]
    assert profile["profile"]["about"] == "mine"
    assert profile["profile"]["skills"] == ["maps"]
    assert [f["userId"] for f in profile["following"]] == [idol.id]
    assert [f["userId"] for f in profile["followers"]] == [fan.id]
    assert [(b["userId"], b["reason"]) for b in profile["blocks"]] == [(pest.id, "noise")]
    assert profile["avatar"] is None


async def test_export_is_for_the_user_themself(user_app: UserApp, territories: Territories) -> None:
    me = await user_app.people.create(territories.home.code)
    other = await user_app.people.create(territories.home.code)
    reps = {"reps": [{"__typename": "DataExport", "userId": me.id}]}
    forbidden = await user_app.client(other).error(EXPORT, reps)
    assert forbidden["extensions"]["code"] == "FORBIDDEN"
    anonymous = await user_app.client().error(EXPORT, reps)
    assert anonymous["extensions"]["code"] == "UNAUTHENTICATED"
