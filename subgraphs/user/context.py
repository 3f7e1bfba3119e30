"""The typed GraphQL context of one request: the subgraph's runtime, the caller, the loaders."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from strawberry.types import Info as StrawberryInfo

from core.config import Settings
from core.db import Database
from core.events.live import LiveFeed
from core.kit.context import ViewerContext
from core.ratelimit import SlidingWindowLimiter
from core.security import KeyRing, Principal, SessionRegistry, authenticate
from subgraphs.user.directory import UserDirectory
from subgraphs.user.event_views import EventViews
from subgraphs.user.loaders import Loaders
from subgraphs.user.storage import BlobStore

if TYPE_CHECKING:
    from subgraphs.user.avatar_service import AvatarLinks


@dataclass(frozen=True)
class UserRuntime:
    """What lives as long as the app: settings, database, caches, avatar storage."""

    settings: Settings
    db: Database
    directory: UserDirectory
    blobs: BlobStore
    links: AvatarLinks
    feed: LiveFeed
    event_views: EventViews
    keyring: KeyRing
    revocations: SessionRegistry
    limiter: SlidingWindowLimiter
    # Avatar uploads per user (decoding and re-encoding images costs CPU): count, window seconds.
    upload_limit: tuple[int, float] = (20, 3600.0)


class UserContext(ViewerContext, kw_only=True):
    rt: UserRuntime
    loaders: Loaders

    async def subscriber(self) -> Principal | None:
        """The caller of a subscription: `Authorization` of the connection_init payload, else
        of the HTTP upgrade request; None when anonymous."""
        header = self.subscription_token()
        if header is not None:
            return await authenticate(header, self.rt.keyring, self.rt.revocations)
        return self.optional_viewer()

    def viewer_id(self) -> uuid.UUID | None:
        viewer = self.optional_viewer()
        return uuid.UUID(viewer.user_id) if viewer is not None else None


Info = StrawberryInfo[UserContext, Any]
