"""The user subscriptions, fed from NATS: `userUpdated(userId)` and `newFollower`.

The same privacy rules as every read: an update is delivered only while the viewer may see the
profile, and a follower who blocked the viewer (or was blocked) is never announced.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncGenerator
from datetime import datetime

import strawberry
from strawberry.federation.schema_directives import Provides
from strawberry.federation.types import FieldSet

from core.errors import NotFound, Unauthenticated
from core.events.subjects import realtime_user_subject
from subgraphs.user import events
from subgraphs.user.context import Info
from subgraphs.user.loaders import Loaders
from subgraphs.user.pagination import EdgeCursor
from subgraphs.user.service import parse_user_id
from subgraphs.user.types import User, UserEdge

# Changes of what `User` shows, by this subgraph; the auth subgraph's account events join later.
UPDATE_ACTIONS = frozenset({events.PROFILE_UPDATED, events.PRIVACY_CHANGED, events.AVATAR_CHANGED})


def _fresh_loaders(info: Info, viewer_id: uuid.UUID | None) -> Loaders:
    """New loaders for one event, which become the context's: privacy, follows and blocks change
    while a subscription lives, and the context lives as long as the WebSocket (without new
    loaders every event would show the profile as it was cached for the first one). The event's
    privacy check and its fields read the same snapshot, once."""
    rt = info.context.rt
    info.context.loaders = Loaders(rt.db, rt.directory, viewer_id)
    return info.context.loaders


async def _may_see(info: Info, viewer_id: uuid.UUID | None, owner: uuid.UUID) -> bool:
    return (await _fresh_loaders(info, viewer_id).owners.load(owner)).visible


@strawberry.type
class Subscription:
    # The user's profile changed; only while the viewer may see it (anyone, for a public one).
    # The username comes with each event (read with it), not from the auth subgraph.
    @strawberry.subscription(directives=[Provides(fields=FieldSet("username"))])  # type: ignore[untyped-decorator]
    async def user_updated(self, info: Info, user_id: strawberry.ID) -> AsyncGenerator[User, None]:
        viewer = await info.context.subscriber()
        viewer_id = uuid.UUID(viewer.user_id) if viewer is not None else None
        owner = parse_user_id(user_id)
        home = await info.context.rt.directory.home_territory(owner)
        if home is None or not await _may_see(info, viewer_id, owner):
            raise NotFound("Profile not found", field="userId")
        # Only the events about this user, whatever their action (the helper validates the id).
        subject = realtime_user_subject(owner, events.DOMAIN)
        async for event in info.context.rt.feed.events(subject):
            data = event.data if isinstance(event.data, dict) else {}
            action = event.subject.rsplit(".", 1)[-1]
            if action not in UPDATE_ACTIONS or data.get("userId") != str(owner):
                continue
            # Read once for every subscription this event reaches (see EventViews).
            view, username = await info.context.rt.event_views.view(event.id, owner, viewer_id)
            if view.visible:
                loaders = _fresh_loaders(info, viewer_id)
                loaders.owners.prime(owner, view)
                loaders.usernames.prime(owner, username)
                yield User.of(owner)  # its fields read what the check just read

    # Someone followed the signed-in user (in any territory).
    @strawberry.subscription
    async def new_follower(self, info: Info) -> AsyncGenerator[UserEdge, None]:
        viewer = await info.context.subscriber()
        if viewer is None:
            raise Unauthenticated()
        me = uuid.UUID(viewer.user_id)
        # Follows of the viewer only, published live whichever territory the follower is in.
        subject = realtime_user_subject(me, events.DOMAIN, events.FOLLOWED)
        async for event in info.context.rt.feed.events(subject):
            data = event.data if isinstance(event.data, dict) else {}
            if data.get("followingId") != viewer.user_id:
                continue
            try:
                follower = uuid.UUID(str(data.get("followerId")))
                at = datetime.fromisoformat(str(data.get("at")))
            except ValueError:
                continue
            blocked = await _fresh_loaders(info, me).blocked_with_viewer(viewer.territory_code)
            if follower in blocked:
                continue
            yield UserEdge(
                node=User.of(follower),
                cursor=EdgeCursor(at=at, user_id=follower).encode(),
                followed_at=at,
            )
