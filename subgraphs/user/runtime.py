"""What every user use case works with: the shared clients, the directory of home territories,
avatar storage and links, the realtime feed."""

from __future__ import annotations

import contextlib
from dataclasses import dataclass
from pathlib import Path

from redis.asyncio import Redis

from core.cache import CacheNamespace, TerritoryCache
from core.config import Settings
from core.db import Database
from core.events.live import LiveFeed
from core.ratelimit import SlidingWindowLimiter
from core.security import KeyRing, SessionRegistry
from subgraphs.user.avatar_service import AvatarLinks
from subgraphs.user.directory import UserDirectory
from subgraphs.user.event_views import EventViews
from subgraphs.user.s3 import S3BlobStore
from subgraphs.user.storage import BlobStore, LocalBlobStore

SERVICE_NAME = "user"
HOME_TERRITORY_TTL_SECONDS = 3600.0


def avatar_storage_dir(settings: Settings) -> Path:
    configured = settings.user.avatar_storage_dir
    return Path(configured) if configured else settings.devstack.dir / "avatars"


def avatar_store(settings: Settings) -> BlobStore:
    if settings.user.avatar_storage_url:
        return S3BlobStore.from_url(settings.user.avatar_storage_url)
    return LocalBlobStore(avatar_storage_dir(settings))


def avatar_public_base_url(settings: Settings) -> str:
    services = settings.services
    return settings.user.avatar_public_base_url or (
        f"http://{services.host}:{services.port(SERVICE_NAME)}"
    )


@dataclass(frozen=True)
class UserRuntime:
    """The long-lived clients of one user service process."""

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

    @classmethod
    def create(
        cls,
        settings: Settings,
        db: Database,
        redis: Redis,
        *,
        blobs: BlobStore | None = None,
        upload_limit: tuple[int, float] = (20, 3600.0),
    ) -> UserRuntime:
        homes = CacheNamespace(
            redis, TerritoryCache.from_settings(redis, settings.redis).global_.key("user-home:")
        )
        directory = UserDirectory(db, redis, homes, ttl_seconds=HOME_TERRITORY_TTL_SECONDS)
        return cls(
            settings=settings,
            db=db,
            directory=directory,
            blobs=blobs or avatar_store(settings),
            links=AvatarLinks(avatar_public_base_url(settings)),
            feed=LiveFeed(settings.nats, "user-subscriptions"),
            event_views=EventViews(db, directory),
            keyring=KeyRing.from_settings(settings),
            revocations=SessionRegistry.from_settings(redis, settings),
            limiter=SlidingWindowLimiter(redis, settings.redis.key_prefix),
            upload_limit=upload_limit,
        )

    async def close(self) -> None:
        with contextlib.suppress(Exception):  # NATS may be gone already: nothing to close then
            await self.feed.close()
        if isinstance(self.blobs, S3BlobStore):
            await self.blobs.aclose()
