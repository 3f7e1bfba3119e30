"""User search over one or several territories: each territory answers from its own index, and
the pages are merged in the one global order (folded username, then id) the cursors follow."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Collection, Sequence
from uuid import UUID

from core.db import Database
from core.errors import BadUserInput
from subgraphs.user.pagination import SearchCursor
from subgraphs.user.records import SearchPage
from subgraphs.user.repository import UserRepository

SEARCH_MAX_LENGTH = 100
MAX_TERRITORIES = 20


def search_text(query: str) -> str:
    text = query.strip()
    if not text or len(text) > SEARCH_MAX_LENGTH:
        raise BadUserInput(f"`query` must be 1 to {SEARCH_MAX_LENGTH} characters", field="query")
    return text


def search_territories(requested: Sequence[str] | None, viewer_territory: str | None) -> list[str]:
    """The territories to search: those named, else the viewer's own."""
    if requested:
        codes = list(dict.fromkeys(str(code) for code in requested))
        if len(codes) > MAX_TERRITORIES:
            raise BadUserInput(
                f"At most {MAX_TERRITORIES} territories per search", field="territoryCodes"
            )
        return codes
    if viewer_territory is None:
        raise BadUserInput("Sign in or name the territories to search", field="territoryCodes")
    return [viewer_territory]


async def search_users(
    db: Database,
    text: str,
    territories: Sequence[str],
    *,
    viewer_id: UUID | None,
    hidden: Collection[UUID],
    after: SearchCursor | None,
    limit: int,
) -> SearchPage:
    async def one(territory: str) -> SearchPage:
        async with db.territory_session(territory) as session:
            return await UserRepository(session).search(
                text, viewer_id=viewer_id, hidden=hidden, after=after, limit=limit
            )

    pages = await asyncio.gather(*(one(territory) for territory in territories))
    if len(pages) == 1:
        return pages[0]
    # Each page holds its territory's next `limit` hits after the cursor, in global order, so
    # the first `limit` of their merge are the global next `limit`.
    merged = list(
        heapq.merge(*(p.hits for p in pages), key=lambda hit: (hit.key, str(hit.user_id)))
    )
    return SearchPage(
        hits=merged[:limit],
        has_next_page=len(merged) > limit or any(p.has_next_page for p in pages),
        total_count=sum(p.total_count for p in pages),
    )
