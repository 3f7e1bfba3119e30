"""Where avatar files live: a small `BlobStore` interface and its local-directory implementation.

Keys are `<user id>/<version>/<size>.webp`: a new upload writes a new version beside the old
one, so a failed upload never damages the avatar in use, and the old version is removed only
after the profile points at the new one.
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import tempfile
from pathlib import Path
from typing import Protocol

_KEY = re.compile(r"^[0-9a-f-]{36}(/[0-9a-f]{32}(/[a-z]+\.webp)?)?$")


class BlobStore(Protocol):
    async def put(self, key: str, data: bytes) -> None: ...

    async def get(self, key: str) -> bytes | None: ...

    async def delete_prefix(self, prefix: str) -> None:
        """Remove every blob under `prefix` (a user, or one version of a user's avatar)."""
        ...

    async def keys(self, prefix: str) -> list[str]: ...


def avatar_key(user_id: str, version: str, size: str | None = None) -> str:
    return f"{user_id}/{version}" if size is None else f"{user_id}/{version}/{size}.webp"


class LocalBlobStore:
    """Blobs as files under one directory; writes are atomic renames."""

    def __init__(self, root: Path) -> None:
        self.root = root

    def _path(self, key: str) -> Path:
        # Keys are built from UUIDs and hex versions only; anything else never reaches the disk.
        if not _KEY.match(key):
            raise ValueError("Invalid blob key")
        return self.root / key

    async def put(self, key: str, data: bytes) -> None:
        await asyncio.to_thread(self._put, self._path(key), data)

    @staticmethod
    def _put(path: Path, data: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=".upload-")
        try:
            with os.fdopen(fd, "wb") as handle:
                handle.write(data)
            os.replace(temporary, path)
        except BaseException:
            Path(temporary).unlink(missing_ok=True)
            raise

    async def get(self, key: str) -> bytes | None:
        path = self._path(key)
        try:
            return await asyncio.to_thread(path.read_bytes)
        except FileNotFoundError:
            return None

    async def delete_prefix(self, prefix: str) -> None:
        path = self._path(prefix)
        await asyncio.to_thread(shutil.rmtree, path, True)

    async def keys(self, prefix: str) -> list[str]:
        base = self._path(prefix)

        def walk() -> list[str]:
            if not base.exists():
                return []
            return sorted(str(p.relative_to(self.root)) for p in base.rglob("*") if p.is_file())

        return await asyncio.to_thread(walk)
