"""Avatar uploads and deletion, use cases taking the runtime like those of service.py: render,
store the new version, point the profile at it, and only then remove the old files (so a failed
upload leaves the previous avatar intact)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any
from uuid import UUID

from subgraphs.user import events
from subgraphs.user.avatars import AvatarSize, ProcessedAvatar, process_avatar
from subgraphs.user.records import ProfileRecord
from subgraphs.user.repository import UserRepository
from subgraphs.user.storage import BlobStore, avatar_key

if TYPE_CHECKING:  # the runtime holds this module's AvatarLinks
    from subgraphs.user.runtime import UserRuntime

log = logging.getLogger(__name__)


class AvatarLinks:
    """Public URLs of stored avatars: `<base>/avatars/<user id>/<size>?v=<version>`.

    The version is random and changes on every upload, so a URL is only known to viewers who
    were shown the profile, and can be cached forever."""

    def __init__(self, public_base_url: str) -> None:
        self.base = public_base_url.rstrip("/")

    def url(self, user_id: UUID, avatar: dict[str, Any] | None, size: AvatarSize) -> str | None:
        if not avatar or not avatar.get("version"):
            return None
        return f"{self.base}/avatars/{user_id}/{size.value}?v={avatar['version']}"


async def upload_avatar(
    rt: UserRuntime, user_id: UUID, territory: str, data: bytes
) -> ProfileRecord:
    blobs = rt.blobs
    processed = await asyncio.to_thread(process_avatar, data)
    await _store(blobs, user_id, processed)
    try:
        async with rt.db.territory_session(territory) as session:
            repo = UserRepository(session)
            before = (await repo.profiles([user_id]))[user_id]
            metadata = {**processed.metadata(), "updatedAt": datetime.now(UTC).isoformat()}
            after = await repo.update_profile(user_id, {"avatar": metadata})
            await events.publish(
                session,
                territory,
                events.AVATAR_CHANGED,
                {**events.ids(userId=user_id), "version": processed.version},
                audience=[user_id],
            )
    except BaseException:
        await blobs.delete_prefix(avatar_key(str(user_id), processed.version))
        raise
    await _remove_version(blobs, user_id, before.avatar)
    return after


async def delete_avatar(rt: UserRuntime, user_id: UUID, territory: str) -> bool:
    async with rt.db.territory_session(territory) as session:
        repo = UserRepository(session)
        before = (await repo.profiles([user_id]))[user_id]
        if before.avatar is None:
            return False
        await repo.update_profile(user_id, {"avatar": None})
        await events.publish(
            session,
            territory,
            events.AVATAR_CHANGED,
            {**events.ids(userId=user_id), "version": None},
            audience=[user_id],
        )
    await _remove_version(rt.blobs, user_id, before.avatar)
    return True


async def _store(blobs: BlobStore, user_id: UUID, processed: ProcessedAvatar) -> None:
    try:
        for rendition in processed.renditions:
            key = avatar_key(str(user_id), processed.version, rendition.size.value)
            await blobs.put(key, rendition.data)
    except BaseException:
        await blobs.delete_prefix(avatar_key(str(user_id), processed.version))
        raise


async def _remove_version(blobs: BlobStore, user_id: UUID, avatar: dict[str, Any] | None) -> None:
    if avatar and avatar.get("version"):
        # The profile no longer points here; a leftover file is garbage, not a failure.
        with contextlib.suppress(OSError):
            await blobs.delete_prefix(avatar_key(str(user_id), str(avatar["version"])))
