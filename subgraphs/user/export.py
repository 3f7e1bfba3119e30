"""The user subgraph's part of a user's data export (data portability): everything it holds."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from core.db import Database
from subgraphs.user.repository import UserRepository


async def export_profile(db: Database, user_id: UUID, territory: str) -> dict[str, Any]:
    async with db.territory_session(territory) as session:
        repo = UserRepository(session)
        profile = (await repo.profiles([user_id])).get(user_id)
        following, followers = await repo.all_edges(user_id)
        blocks = await repo.blocks_by(user_id)
    return {
        "profile": profile.export() if profile is not None else None,
        "avatar": profile.avatar if profile is not None else None,
        "following": [{"userId": str(e.user_id), "since": e.at.isoformat()} for e in following],
        "followers": [{"userId": str(e.user_id), "since": e.at.isoformat()} for e in followers],
        "blocks": [
            {"userId": str(b.blocked_id), "reason": b.reason, "since": b.created_at.isoformat()}
            for b in blocks
        ],
    }
