"""Profiles through the real app: the original's profile cases, partial updates, clearing with
null, validation with `extensions.field`, reset, and visibility on `profile` and `User.profile`."""

from __future__ import annotations

import uuid

from tests.subgraphs.user.conftest import Territories, UserApp

PROFILE = """
query Profile($id: ID!) {
  profile(userId: $id) {
    user { id } about interests skills languages location websiteUrl githubUrl linkedinUrl
    twitterHandle theme visibility showEmail showRealName allowMessagesFrom avatarUrl updatedAt
  }
}
"""

UPDATE = """
mutation Update($input: UpdateProfileInput!) {
  updateProfile(input: $input) {
    about interests skills location websiteUrl twitterHandle theme visibility showEmail
  }
}
"""

ENTITY_PROFILE = """
query Entities($reps: [_Any!]!) {
  _entities(representations: $reps) { ... on User { id profile { about } } }
}
"""


async def test_profile_of_nonexistent_user_is_not_found(
    user_app: UserApp, territories: Territories
) -> None:
    viewer = await user_app.people.create(territories.home.code)
    error = await user_app.client(viewer).error(PROFILE, {"id": str(uuid.uuid4())})
    assert error["extensions"]["code"] == "NOT_FOUND"


async def test_profile_is_created_with_defaults_and_read_back(
    user_app: UserApp, territories: Territories
) -> None:
    owner = await user_app.people.create(territories.home.code)
    profile = (await user_app.client(owner).data(PROFILE, {"id": owner.id}))["profile"]
    assert profile["user"] == {"id": owner.id}
    assert profile["visibility"] == "PUBLIC"
    assert profile["theme"] == "AUTO"
    assert profile["showEmail"] is False
    assert profile["showRealName"] is True
    assert profile["allowMessagesFrom"] == "EVERYONE"
    assert profile["interests"] == []
    assert profile["about"] is None
    assert profile["avatarUrl"] is None


async def test_partial_update_changes_only_the_fields_sent(
    user_app: UserApp, territories: Territories
) -> None:
    owner = await user_app.people.create(territories.home.code)
    client = user_app.client(owner)
    await client.data(
        UPDATE,
        {
            "input": {
                "about": "Hello",
                "interests": ["maps", "Maps", "rivers"],
                "location": "Aarhus",
            }
        },
    )
    updated = (await client.data(UPDATE, {"input": {"theme": "DARK"}}))["updateProfile"]
    assert updated["about"] == "Hello"
    assert updated["interests"] == ["maps", "rivers"]  # case-insensitive duplicates dropped
    assert updated["location"] == "Aarhus"
    assert updated["theme"] == "DARK"


async def test_explicit_null_clears_a_field(user_app: UserApp, territories: Territories) -> None:
    owner = await user_app.people.create(territories.home.code)
    client = user_app.client(owner)
    await client.data(
        UPDATE,
        {"input": {"about": "Temporary", "websiteUrl": "https://example.org", "skills": ["x"]}},
    )
    cleared = (
        await client.data(UPDATE, {"input": {"about": None, "websiteUrl": None, "skills": None}})
    )["updateProfile"]
    assert cleared["about"] is None
    assert cleared["websiteUrl"] is None
    profile = (await client.data(PROFILE, {"id": owner.id}))["profile"]
    assert profile["about"] is None
    assert profile["skills"] == []


async def test_validation_names_the_field(user_app: UserApp, territories: Territories) -> None:
    owner = await user_app.people.create(territories.home.code)
    client = user_app.client(owner)
    cases = [
        ({"about": "x" * 2001}, "about"),
        ({"location": "x" * 256}, "location"),
        ({"websiteUrl": "javascript:alert(1)"}, "websiteUrl"),
        ({"githubUrl": "https://"}, "githubUrl"),
        ({"linkedinUrl": "ftp://example.org/x"}, "linkedinUrl"),
        ({"twitterHandle": "not a handle!"}, "twitterHandle"),
        ({"interests": [str(n) for n in range(51)]}, "interests"),
        ({"skills": ["y" * 51]}, "skills"),
        ({"languages": ["  "]}, "languages"),
        ({"visibility": None}, "visibility"),
    ]
    for patch, field in cases:
        error = await client.error(UPDATE, {"input": patch})
        assert error["extensions"]["code"] == "BAD_USER_INPUT", (patch, error)
        assert error["extensions"]["field"] == field, (patch, error)
    # Nothing of the refused updates was written.
    profile = (await client.data(PROFILE, {"id": owner.id}))["profile"]
    assert profile["about"] is None
    assert profile["visibility"] == "PUBLIC"


async def test_twitter_handle_drops_the_at_sign(
    user_app: UserApp, territories: Territories
) -> None:
    owner = await user_app.people.create(territories.home.code)
    updated = await user_app.client(owner).data(UPDATE, {"input": {"twitterHandle": "@unity_plan"}})
    assert updated["updateProfile"]["twitterHandle"] == "unity_plan"


async def test_reset_profile_restores_defaults(user_app: UserApp, territories: Territories) -> None:
    owner = await user_app.people.create(territories.home.code)
    client = user_app.client(owner)
    await client.data(
        UPDATE,
        {"input": {"about": "x", "visibility": "PRIVATE", "showEmail": True, "theme": "DARK"}},
    )
    reset = await client.data("mutation { resetProfile { about visibility showEmail theme } }")
    assert reset["resetProfile"] == {
        "about": None,
        "visibility": "PUBLIC",
        "showEmail": False,
        "theme": "AUTO",
    }


async def test_update_needs_a_signed_in_user(user_app: UserApp) -> None:
    error = await user_app.client().error(UPDATE, {"input": {"about": "x"}})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def test_a_bad_token_is_refused_even_on_public_reads(
    user_app: UserApp, territories: Territories
) -> None:
    owner = await user_app.people.create(territories.home.code)
    client = user_app.client(owner)
    client.token = owner.token[:-4] + "AAAA"
    error = await client.error(PROFILE, {"id": owner.id})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"


async def _set_visibility(user_app: UserApp, owner, visibility: str) -> None:  # type: ignore[no-untyped-def]
    await user_app.client(owner).data(UPDATE, {"input": {"visibility": visibility}})


async def test_public_profile_is_seen_by_anyone(
    user_app: UserApp, territories: Territories
) -> None:
    owner = await user_app.people.create(territories.home.code)
    stranger = await user_app.people.create(territories.home.code)
    await user_app.client(owner).data(UPDATE, {"input": {"about": "public me"}})
    for client in (user_app.client(stranger), user_app.client()):
        profile = (await client.data(PROFILE, {"id": owner.id}))["profile"]
        assert profile["about"] == "public me"


async def test_private_profile_is_seen_by_the_owner_only(
    user_app: UserApp, territories: Territories
) -> None:
    owner = await user_app.people.create(territories.home.code)
    follower = await user_app.people.create(territories.home.code)
    await _set_visibility(user_app, owner, "PRIVATE")
    await user_app.client(follower).data(
        "mutation($id: ID!) { follow(userId: $id) { id } }", {"id": owner.id}
    )
    assert (await user_app.client(owner).data(PROFILE, {"id": owner.id}))["profile"] is not None
    for client in (user_app.client(follower), user_app.client()):
        error = await client.error(PROFILE, {"id": owner.id})
        assert error["extensions"]["code"] == "NOT_FOUND"
        # Hidden reads exactly like missing.
        missing = await client.error(PROFILE, {"id": str(uuid.uuid4())})
        assert error["message"] == missing["message"]
    hidden = await user_app.client(follower).data(
        ENTITY_PROFILE, {"reps": [{"__typename": "User", "id": owner.id}]}
    )
    assert hidden["_entities"] == [{"id": owner.id, "profile": None}]


async def test_connections_profile_is_seen_by_followers_only(
    user_app: UserApp, territories: Territories
) -> None:
    owner = await user_app.people.create(territories.home.code)
    follower = await user_app.people.create(territories.home.code)
    followed_by_owner = await user_app.people.create(territories.home.code)
    await _set_visibility(user_app, owner, "CONNECTIONS")
    follow = "mutation($id: ID!) { follow(userId: $id) { id } }"
    await user_app.client(follower).data(follow, {"id": owner.id})
    # The owner following someone does not let them in: the original's rule is "viewer follows".
    await user_app.client(owner).data(follow, {"id": followed_by_owner.id})
    assert (await user_app.client(follower).data(PROFILE, {"id": owner.id}))["profile"] is not None
    for client in (user_app.client(followed_by_owner), user_app.client()):
        error = await client.error(PROFILE, {"id": owner.id})
        assert error["extensions"]["code"] == "NOT_FOUND"


async def test_blocked_viewer_sees_nothing_either_way(
    user_app: UserApp, territories: Territories
) -> None:
    owner = await user_app.people.create(territories.home.code)
    blocked = await user_app.people.create(territories.home.code)
    blocker = await user_app.people.create(territories.home.code)
    block = "mutation($id: ID!) { block(userId: $id) }"
    await user_app.client(owner).data(block, {"id": blocked.id})
    await user_app.client(blocker).data(block, {"id": owner.id})
    for viewer in (blocked, blocker):
        error = await user_app.client(viewer).error(PROFILE, {"id": owner.id})
        assert error["extensions"]["code"] == "NOT_FOUND"


async def test_show_email_flag_travels_as_an_inaccessible_entity_field(
    user_app: UserApp, territories: Territories
) -> None:
    owner = await user_app.people.create(territories.home.code)
    viewer = await user_app.people.create(territories.home.code)
    query = """
    query($reps: [_Any!]!) {
      _entities(representations: $reps) { ... on User { showEmail showRealName } }
    }
    """
    reps = {"reps": [{"__typename": "User", "id": owner.id}]}
    assert (await user_app.client(viewer).data(query, reps))["_entities"] == [
        {"showEmail": False, "showRealName": True}
    ]
    await user_app.client(owner).data(UPDATE, {"input": {"showEmail": True}})
    assert (await user_app.client(viewer).data(query, reps))["_entities"][0]["showEmail"] is True
    # A viewer who may not see the profile gets no permission from it.
    await _set_visibility(user_app, owner, "PRIVATE")
    assert (await user_app.client(viewer).data(query, reps))["_entities"] == [
        {"showEmail": False, "showRealName": False}
    ]
    sdl = (await user_app.client().data("{ _service { sdl } }"))["_service"]["sdl"]
    assert "showEmail: Boolean! @inaccessible" in sdl


async def test_a_revoked_session_is_refused_at_once(
    user_app: UserApp, territories: Territories
) -> None:
    owner = await user_app.people.create(territories.home.code)
    client = user_app.client(owner)
    await client.data(UPDATE, {"input": {"about": "still here"}})
    await user_app.runtime.revocations.revoke(owner.session_id)
    error = await client.error(UPDATE, {"input": {"about": "gone"}})
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
