"""A unit of work over the territories one operation touches: one session per territory.

A follow between a `dk` and a `de` user writes in both territories' schemas (perhaps on two
pods). Sessions open lazily, on first use, and all commit when the unit ends normally or all
roll back when it raises. Across pods this is not atomic: the writes are ordered so that a
failure leaves at worst an edge on the actor's side only, which a retry completes.
"""

from __future__ import annotations

from contextlib import AsyncExitStack
from types import TracebackType

from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Database
from subgraphs.user.repository import UserRepository


class TerritorySessions:
    def __init__(self, db: Database) -> None:
        self._db = db
        self._stack = AsyncExitStack()
        self._sessions: dict[str, AsyncSession] = {}

    async def __aenter__(self) -> TerritorySessions:
        await self._stack.__aenter__()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> bool | None:
        self._sessions.clear()
        return await self._stack.__aexit__(exc_type, exc, traceback)

    @property
    def opened(self) -> list[str]:
        """The territories whose sessions are open, in the order they were opened."""
        return list(self._sessions)

    async def session(self, territory: str) -> AsyncSession:
        session = self._sessions.get(territory)
        if session is None:
            session = await self._stack.enter_async_context(self._db.territory_session(territory))
            self._sessions[territory] = session
        return session

    async def repository(self, territory: str) -> UserRepository:
        return UserRepository(await self.session(territory))
