"""`GET /avatars/{userId}/{size}`: avatar images, with caching that matches how they change.

With `?v=<version>` (the URLs `avatarUrl` hands out) a file is immutable and cached for a year.
Without it, the current avatar is served to whoever may see the profile (anyone, for a public
one; the bearer token counts when sent), revalidated by its ETag. Hidden and missing are both 404.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

from litestar import Request, Response, get
from litestar.handlers import HTTPRouteHandler
from litestar.params import FromPath, FromQuery

from core.errors import Unauthenticated
from core.security import authenticate
from subgraphs.user.avatars import OUTPUT_CONTENT_TYPE, AvatarSize
from subgraphs.user.loaders import Loaders
from subgraphs.user.runtime import UserRuntime
from subgraphs.user.storage import avatar_key

_VERSION = re.compile(r"^[0-9a-f]{32}$")
# Public: the subgraph serves these to clients directly, outside the router's trust boundary.
AVATARS_PREFIX = "/avatars/"
_CURRENT_MAX_AGE_SECONDS = 300


def avatar_route(rt: UserRuntime) -> HTTPRouteHandler:
    @get(AVATARS_PREFIX + "{user_id:str}/{size:str}")
    async def avatar(
        request: Request[Any, Any, Any],
        user_id: FromPath[str],
        size: FromPath[str],
        v: FromQuery[str | None] = None,
    ) -> Response[bytes]:
        try:
            owner = uuid.UUID(user_id)
            rendition = AvatarSize(size)
        except ValueError:
            return _missing()
        if v is not None:
            if not _VERSION.match(v):
                return _missing()
            version, cache = v, "public, max-age=31536000, immutable"
        else:
            current = await _current_version(rt, request, owner)
            if current is None:
                return _missing()
            version, cache = current, f"private, max-age={_CURRENT_MAX_AGE_SECONDS}"
        etag = f'"{version}-{rendition.value}"'
        headers = {"Cache-Control": cache, "ETag": etag, "X-Content-Type-Options": "nosniff"}
        if request.headers.get("if-none-match") == etag:
            return Response(b"", status_code=304, headers=headers)
        data = await rt.blobs.get(avatar_key(str(owner), version, rendition.value))
        if data is None:
            return _missing()
        return Response(data, media_type=OUTPUT_CONTENT_TYPE, headers=headers)

    return avatar


async def _current_version(
    rt: UserRuntime, request: Request[Any, Any, Any], owner: uuid.UUID
) -> str | None:
    """The version of the owner's avatar if this caller may see the profile."""
    try:
        viewer = await authenticate(
            request.headers.get("authorization"), rt.keyring, rt.revocations
        )
    except Unauthenticated:
        viewer = None
    viewer_id = uuid.UUID(viewer.user_id) if viewer is not None else None
    view = await Loaders(rt.db, rt.directory, viewer_id).owners.load(owner)
    avatar = view.profile.avatar if view.profile is not None else None
    version = avatar.get("version") if avatar else None
    return str(version) if version else None


def _missing() -> Response[bytes]:
    return Response(b"", status_code=404)
