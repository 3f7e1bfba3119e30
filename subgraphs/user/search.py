"""User search: its SQL, and the search over one or several territories, each answering from its
own index, the pages merged in the one global order (folded username, then id) of the cursors."""

from __future__ import annotations

import asyncio
import heapq
from collections.abc import Collection, Sequence
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Select,
    and_,
    exists,
    func,
    literal,
    or_,
    outerjoin,
    select,
    tuple_,
)
from sqlalchemy.orm import QueryableAttribute

from core.db import Database
from core.errors import BadUserInput
from subgraphs.user.models import User, UserConnection, UserProfile
from subgraphs.user.pagination import SearchCursor
from subgraphs.user.privacy import Visibility
from subgraphs.user.records import SearchHit, SearchPage

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
    count, page = search_statements(
        text, viewer_id=viewer_id, hidden=hidden, after=after, limit=limit
    )

    async def one(territory: str) -> SearchPage:
        async with db.territory_session(territory) as session:
            total = await session.execute(count)
            rows = await session.execute(page)
        hits = [SearchHit(user_id=row[0], key=row[1]) for row in rows]
        return SearchPage(
            hits=hits[:limit], has_next_page=len(hits) > limit, total_count=int(total.scalar_one())
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


def search_key(expression: ColumnElement[str] | QueryableAttribute[str]) -> ColumnElement[str]:
    """The case- and accent-folded key the search index is built on (migration u0002)."""
    return func.user_search_key(expression)


_USER_SEARCH_KEY = search_key(User.username + " " + func.coalesce(User.display_name, ""))


def search_statements(
    text: str,
    *,
    viewer_id: UUID | None,
    hidden: Collection[UUID],
    after: SearchCursor | None,
    limit: int,
) -> tuple[Select[int], Select[UUID, str]]:
    """(how many match, the page after the cursor plus one row to tell if more follow)."""
    pattern = "%" + _escape_like(text) + "%"
    # Code-point order whatever the database's collation: results of several territories
    # (perhaps on differently configured pods) merge in one order (see search.py).
    key = search_key(User.username).collate("C")
    p = UserProfile
    visibility = func.coalesce(p.visibility, Visibility.PUBLIC.value)
    visible: list[ColumnElement[bool]] = [visibility == Visibility.PUBLIC.value]
    if viewer_id is not None:
        follows = exists().where(
            UserConnection.follower_id == viewer_id,
            UserConnection.following_id == User.id,
        )
        visible += [
            User.id == viewer_id,
            and_(visibility == Visibility.CONNECTIONS.value, follows),
        ]
    conditions: list[ColumnElement[bool] | QueryableAttribute[bool]] = [
        User.is_active,
        _USER_SEARCH_KEY.like(search_key(literal(pattern)), escape="\\"),
        or_(*visible),
    ]
    if hidden:
        conditions.append(User.id.not_in(list(hidden)))
    source = outerjoin(User, UserProfile, p.user_id == User.id)
    count = select(func.count()).select_from(source).where(*conditions)
    if after is not None:
        conditions.append(tuple_(key, User.id) > tuple_(after.key, after.user_id))
    page = (
        select(User.id, key)
        .select_from(source)
        .where(*conditions)
        .order_by(key, User.id)
        .limit(limit + 1)
    )
    return count, page


def _escape_like(text: str) -> str:
    return text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
