"""End to end through both subgraphs, with users registered by the auth subgraph (real tokens
from a real registration): the showEmail/showRealName flags crossing to the auth subgraph as a
router's `@requires` fetch would carry them, the registered event making the profile, and
deleteMyAccount erasing this subgraph's data through the `user.deleted` event."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import func, or_, select

from core.config import Settings
from core.db import Database
from subgraphs.user.app import create_app
from subgraphs.user.models import UserConnection, UserProfile
from tests.signing import SignedAsRouter
from tests.subgraphs.auth.conftest import (  # noqa: F401 - fixtures used by name
    AuthApp,
    Member,
    auth_app,
    auth_settings,
    migrated,
    register_member,
)
from tests.subgraphs.user.conftest import (
    UPDATE_PROFILE,
    Client,
    People,
    Territories,
    UserApp,
    running,
)

FLAGS = """
query($reps: [_Any!]!) {
  _entities(representations: $reps) { ... on User { showEmail showRealName } }
}
"""
PRIVATE_FIELDS = """
query($reps: [_Any!]!) { _entities(representations: $reps) { ... on User { email fullName } } }
"""


async def eventually(check: Callable[[], Awaitable[bool]], *, within: float = 15.0) -> None:
    deadline = time.monotonic() + within
    while not await check():
        if time.monotonic() > deadline:
            raise AssertionError("condition not met in time")
        await asyncio.sleep(0.05)


@pytest.fixture(scope="module")
async def both_apps(
    user_settings: Settings,
    territories: Territories,
    auth_app: AuthApp,  # noqa: F811 - the fixture imported above
) -> AsyncIterator[tuple[UserApp, AuthApp]]:
    app = create_app(user_settings)  # with its consumers of the auth subgraph's events
    db = Database(user_settings.database)
    try:
        async with (
            running(app),
            httpx.AsyncClient(
                transport=httpx.ASGITransport(app=app),
                base_url="http://user.test",
                auth=SignedAsRouter(user_settings),
            ) as http,
        ):
            user_app = UserApp(
                http,
                People(user_settings, db),
                db,
                user_settings,
                Path(user_settings.user.avatar_storage_dir),
                app.state.user_runtime,
                app.state,
            )
            yield user_app, auth_app
    finally:
        await db.dispose()


async def private_fields_as_seen_by(
    apps: tuple[UserApp, AuthApp], viewer: Member, owner: Member
) -> dict[str, Any]:
    """What a router does for `user(id) { email fullName }`: fetch the required flags from this
    subgraph, then hand them to the auth subgraph in the representation."""
    user_app, auth = apps
    reps = [{"__typename": "User", "id": owner.id}]
    flags = (await Client(user_app.http, viewer.access_token).data(FLAGS, {"reps": reps}))[
        "_entities"
    ][0]
    auth_client = auth.client(viewer.access_token)
    data = await auth_client.data(PRIVATE_FIELDS, {"reps": [{**reps[0], **flags}]})
    result: dict[str, Any] = data["_entities"][0]
    return result


async def test_show_email_and_real_name_reach_the_auth_subgraph(
    both_apps: tuple[UserApp, AuthApp], territories: Territories
) -> None:
    user_app, auth = both_apps
    code = territories.home.code
    alice = await register_member(
        auth, code, email=f"a{uuid.uuid4().hex[:8]}@example.org", full_name="Alice Ahl"
    )
    bob = await register_member(auth, code)
    assert await private_fields_as_seen_by(both_apps, bob, alice) == {
        "email": None,
        "fullName": "Alice Ahl",
    }
    alice_client = Client(user_app.http, alice.access_token)
    await alice_client.data(UPDATE_PROFILE, {"input": {"showEmail": True, "showRealName": False}})
    assert await private_fields_as_seen_by(both_apps, bob, alice) == {
        "email": alice.email,
        "fullName": None,
    }
    await alice_client.data(
        UPDATE_PROFILE, {"input": {"showRealName": True, "visibility": "PRIVATE"}}
    )
    # A profile bob may not see grants him nothing, whatever its flags say.
    assert await private_fields_as_seen_by(both_apps, bob, alice) == {
        "email": None,
        "fullName": None,
    }


async def count_mentions(user_app: UserApp, code: str, user_id: uuid.UUID) -> int:
    async with user_app.db.territory_session(code) as session:
        profiles = await session.execute(
            select(func.count()).select_from(UserProfile).where(UserProfile.user_id == user_id)
        )
        edges = await session.execute(
            select(func.count())
            .select_from(UserConnection)
            .where(
                or_(
                    UserConnection.follower_id == user_id,
                    UserConnection.following_id == user_id,
                )
            )
        )
        return int(profiles.scalar_one()) + int(edges.scalar_one())


async def test_registration_makes_the_profile_and_account_deletion_erases_it(
    both_apps: tuple[UserApp, AuthApp], territories: Territories
) -> None:
    user_app, auth = both_apps
    code, remote = territories.home.code, territories.remote.code
    carol = await register_member(auth, code)
    carol_id = uuid.UUID(carol.id)

    async def has_profile() -> bool:
        return await count_mentions(user_app, code, carol_id) == 1

    # Created by the `user.registered` consumer, without anyone reading the profile first.
    await eventually(has_profile)
    far = await user_app.people.create(remote)
    carol_client = Client(user_app.http, carol.access_token)
    await carol_client.data("mutation($id: ID!) { follow(userId: $id) { id } }", {"id": far.id})
    assert await count_mentions(user_app, remote, carol_id) == 1
    deleted = await auth.client(carol.access_token).data(
        "mutation($p: String!) { deleteMyAccount(password: $p) }", {"p": carol.password}
    )
    assert deleted == {"deleteMyAccount": True}

    async def erased() -> bool:
        return (
            await count_mentions(user_app, code, carol_id) == 0
            and await count_mentions(user_app, remote, carol_id) == 0
        )

    await eventually(erased)
    # Her token died with the account, here too.
    error = await carol_client.error("{ blockedUsers { reason } }")
    assert error["extensions"]["code"] == "UNAUTHENTICATED"
