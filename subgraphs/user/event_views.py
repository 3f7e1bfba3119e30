"""How each subscriber may see the user an event is about, read once per event.

An event about a user reaches every subscription watching them: the anonymous ones share one
upstream, and each signed-in viewer has their own. Each decides, at the event, whether its
viewer may still see the profile. Read one by one, that is one transaction per subscription
and event; here the first subscription to ask gathers the others of the same moment: one
transaction reads the profile once and every asking viewer's relationship with its owner.
The privacy decision stays per viewer and per event, on data read after the event.
"""

from __future__ import annotations

import uuid
from collections import OrderedDict
from collections.abc import Sequence
from functools import partial

from strawberry.dataloader import DataLoader

from core.db import Database
from subgraphs.user.directory import UserDirectory
from subgraphs.user.loaders import OwnerView
from subgraphs.user.privacy import NO_RELATIONSHIP
from subgraphs.user.repository import UserRepository

# Events whose views are kept for subscriptions still to ask (they ask within moments).
RECENT_EVENTS = 256


class EventViews:
    """The owner of an event as each viewer may see them, per (event, owner)."""

    def __init__(self, db: Database, directory: UserDirectory) -> None:
        self._db = db
        self._directory = directory
        self._loaders: OrderedDict[tuple[uuid.UUID, uuid.UUID], DataLoader[str, OwnerView]] = (
            OrderedDict()
        )

    async def view(
        self, event_id: uuid.UUID, owner: uuid.UUID, viewer: uuid.UUID | None
    ) -> OwnerView:
        key = (event_id, owner)
        loader = self._loaders.get(key)
        if loader is None:
            loader = self._loaders[key] = DataLoader(load_fn=partial(self._load, owner))
            if len(self._loaders) > RECENT_EVENTS:
                self._loaders.popitem(last=False)
        # Keyed by text: "" is the anonymous viewer.
        return await loader.load(str(viewer) if viewer is not None else "")

    async def _load(self, owner: uuid.UUID, viewers: Sequence[str]) -> list[OwnerView]:
        territory = await self._directory.home_territory(owner)
        if territory is None:
            return [OwnerView(owner, None, None, NO_RELATIONSHIP) for _ in viewers]
        signed_in = {uuid.UUID(viewer) for viewer in viewers if viewer}
        async with self._db.territory_session(territory) as session:
            repo = UserRepository(session)
            profile = (await repo.profiles([owner])).get(owner)
            relationships = await repo.relationships_towards(owner, signed_in)
        views = []
        for viewer in viewers:
            viewer_id = uuid.UUID(viewer) if viewer else None
            relationship = (
                relationships.get(viewer_id, NO_RELATIONSHIP) if viewer_id else NO_RELATIONSHIP
            )
            views.append(OwnerView.seen_by(viewer_id, owner, territory, profile, relationship))
        return views
