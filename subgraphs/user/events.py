"""What the user subgraph publishes (through the outbox, in the transaction of the change) and
the account events it consumes."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Database
from core.errors import NotFound
from core.events import Event, EventBus, TerritoryConsumers, enqueue
from core.events.subjects import cross_subject, territory_subject
from subgraphs.user.directory import UserDirectory
from subgraphs.user.repository import UserRepository
from subgraphs.user.storage import BlobStore

log = logging.getLogger(__name__)

SOURCE = "unityplan/user"
DOMAIN = "user"

PROFILE_UPDATED = "profile_updated"
PRIVACY_CHANGED = "privacy_changed"
AVATAR_CHANGED = "avatar_changed"
FOLLOWED = "followed"
UNFOLLOWED = "unfollowed"
BLOCKED = "blocked"
UNBLOCKED = "unblocked"
PROFILE_DELETED = "profile_deleted"
# On the cross-territory stream the subject has no domain token: `cross.dk.de.user_followed`.
CROSS_FOLLOWED = "user_followed"


async def publish(
    session: AsyncSession,
    territory: str,
    action: str,
    data: dict[str, Any],
    *,
    audience: Sequence[UUID] = (),
) -> None:
    """`territory.<code>.user.<action>` into the outbox of `session`'s territory; `audience`,
    the users it concerns, also get it live on `rt.user.<id>.user.<action>`."""
    await enqueue(
        session,
        subject=territory_subject(territory, DOMAIN, action),
        type=f"unityplan.user.{action}",
        source=SOURCE,
        data=data,
        territory=territory,
        audience=audience,
    )


async def publish_cross(
    session: AsyncSession, origin: str, target: str, action: str, data: dict[str, Any]
) -> None:
    """`cross.<origin>.<target>.<action>`: one territory telling another."""
    await enqueue(
        session,
        subject=cross_subject(origin, target, action),
        type=f"unityplan.user.{action}",
        source=SOURCE,
        data=data,
    )


def ids(**users: UUID) -> dict[str, str]:
    """User ids as event data (strings), e.g. `ids(followerId=a, followingId=b)`."""
    return {name: str(value) for name, value in users.items()}


# ---------------------------------------------------------------------- consumed

USER_REGISTERED = "registered"
USER_DELETED = "deleted"


def event_user_id(event: Event) -> UUID:
    """The subject user of an auth `user.*` event (`data.userId`)."""
    data = event.data if isinstance(event.data, dict) else {}
    return UUID(str(data.get("userId")))


class UserEventHandlers:
    """Reactions to the auth subgraph's account events, each run by a durable consumer in a
    transaction on the user's home territory (the consumer records the event id there too)."""

    def __init__(self, db: Database, blobs: BlobStore, directory: UserDirectory) -> None:
        self._db = db
        self._blobs = blobs
        self._directory = directory

    async def registered(self, event: Event, session: AsyncSession) -> None:
        """Create the new user's default profile (a second delivery finds it and does nothing)."""
        await UserRepository(session).create_profiles([event_user_id(event)])

    async def deleted(self, event: Event, session: AsyncSession) -> None:
        """Erase everything this subgraph holds about the user: rows in the home territory and
        in every territory holding a cross-territory edge, and the avatar files."""
        user_id = event_user_id(event)
        home = event.territory
        repo = UserRepository(session)
        for territory in sorted(await repo.remote_territories_of(user_id)):
            if territory == home:
                continue
            try:
                async with self._db.territory_session(territory) as remote:
                    await UserRepository(remote).erase_user(user_id)
            except NotFound:
                log.warning(
                    "territory %s is gone; nothing of user %s left there", territory, user_id
                )
        await repo.erase_user(user_id)
        await self._blobs.delete_prefix(str(user_id))
        await self._directory.forget(user_id)
        if home is not None:
            await publish(session, home, PROFILE_DELETED, ids(userId=user_id))


async def consume_account_events(
    bus: EventBus, handlers: UserEventHandlers
) -> list[TerritoryConsumers]:
    """Durable consumers of `user.registered` and `user.deleted` in every active territory,
    following the registry (territories provisioned later are picked up)."""
    return [
        await bus.consume_territories(
            "user-profiles-registered", f"{DOMAIN}.{USER_REGISTERED}", handlers.registered
        ),
        await bus.consume_territories(
            "user-profiles-deleted", f"{DOMAIN}.{USER_DELETED}", handlers.deleted
        ),
    ]
