"""The base of every subgraph's repository: all its SQL runs on one session, bound to a
territory's schema (or the global one) by the edge that opened it; rows are added and flushed
here, and the edge commits."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession


@dataclass(frozen=True)
class ClientInfo:
    """Where a request came from, as the router vouches for it (personal data: kept in the
    home territory only)."""

    ip_address: str | None = None
    user_agent: str | None = None
    # The address per-IP limits count against; None when the real client is unknown (a hop
    # inside our network without a trusted X-Forwarded-For): one shared bucket for every
    # client behind the router would let a few failures lock everybody out.
    limit_ip: str | None = None


class Repository:
    """Queries of one subgraph on one session."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    def add(self, *rows: object) -> None:
        self.session.add_all(rows)

    async def flush(self) -> None:
        await self.session.flush()
