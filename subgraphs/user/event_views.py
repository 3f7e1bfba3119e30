"""How each subscriber may see the user an event is about, read once per event.

An event about a user reaches every subscription watching them: the anonymous ones share one
upstream, and each signed-in viewer has their own. Each decides, at the event, whether its
viewer may still see the profile. Read one by one, that is one transaction per subscription
and event; here the first subscription to ask gathers the others of the same moment: one
transaction reads the profile once, every asking viewer's relationship with its owner and the
owner's username (provided with the event, so the router need not ask the auth subgraph).
The privacy decision stays per viewer and per event, on data read after the event.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Sequence
from functools import partial

from strawberry.dataloader import DataLoader

from core.db import Database
from subgraphs.user.directory import UserDirectory
from subgraphs.user.loaders import OwnerView
from subgraphs.user.privacy import NO_RELATIONSHIP
from subgraphs.user.repository import UserRepository

# Events whose views are kept for subscriptions still to ask (they ask within moments).
RECENT_EVENTS = 256


class _EventRead:
    """What was read for one (event, owner): the views per viewer, the owner's username."""

    __slots__ = ("loader", "username")

    def __init__(self, load: Callable[[_EventRead, Sequence[str]], Awaitable[list[OwnerView]]]):
        self.loader: DataLoader[str, OwnerView] = DataLoader(load_fn=partial(load, self))
        self.username: str | None = None


class EventViews:
    """The owner of an event as each viewer may see them, per (event, owner), and the owner's
    username (which the subgraph provides with the events it streams)."""

    def __init__(self, db: Database, directory: UserDirectory) -> None:
        self._db = db
        self._directory = directory
        self._reads: OrderedDict[tuple[uuid.UUID, uuid.UUID], _EventRead] = OrderedDict()

    async def view(
        self, event_id: uuid.UUID, owner: uuid.UUID, viewer: uuid.UUID | None
    ) -> tuple[OwnerView, str | None]:
        """How `viewer` may see `owner` after the event, and the owner's username."""
        key = (event_id, owner)
        read = self._reads.get(key)
        if read is None:
            read = self._reads[key] = _EventRead(partial(self._load, owner))
            if len(self._reads) > RECENT_EVENTS:
                self._reads.popitem(last=False)
        # Keyed by text: "" is the anonymous viewer.
        view = await read.loader.load(str(viewer) if viewer is not None else "")
        return view, read.username

    async def _load(
        self, owner: uuid.UUID, read: _EventRead, viewers: Sequence[str]
    ) -> list[OwnerView]:
        territory = await self._directory.home_territory(owner)
        if territory is None:
            return [OwnerView(owner, None, None, NO_RELATIONSHIP) for _ in viewers]
        signed_in = {uuid.UUID(viewer) for viewer in viewers if viewer}
        async with self._db.territory_session(territory) as session:
            repo = UserRepository(session)
            profile = (await repo.profiles([owner])).get(owner)
            relationships = await repo.relationships_towards(owner, signed_in)
            read.username = (await repo.usernames([owner])).get(owner)
        views = []
        for viewer in viewers:
            viewer_id = uuid.UUID(viewer) if viewer else None
            relationship = (
                relationships.get(viewer_id, NO_RELATIONSHIP) if viewer_id else NO_RELATIONSHIP
            )
            views.append(OwnerView.seen_by(viewer_id, owner, territory, profile, relationship))
        return views
