"""DataLoaders of one request: accounts by global id, territory roles, invitation uses.

`accounts` costs one query on `global.user_identities` (skipped for ids whose home territory
is cached in Redis) plus one query per territory involved, however many ids are asked for.
"""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass

from strawberry.dataloader import DataLoader

from core.errors import NotFound
from subgraphs.auth.models import InvitationUse
from subgraphs.auth.repository import GlobalRepository, TerritoryRepository
from subgraphs.auth.runtime import Account, AuthRuntime

HOME_CACHE_TTL_SECONDS = 3600


def _home_key(user_id: uuid.UUID) -> str:
    return f"home:{user_id}"


async def home_territories(rt: AuthRuntime, user_ids: Sequence[uuid.UUID]) -> dict[uuid.UUID, str]:
    """Each user's home territory from `global.user_identities`, cached in Redis."""
    cache = rt.cache.global_
    found: dict[uuid.UUID, str] = {}
    if user_ids:
        cached = await rt.redis.mget([cache.key(_home_key(u)) for u in user_ids])
        for user_id, raw in zip(user_ids, cached, strict=True):
            if raw is not None:
                found[user_id] = raw.decode() if isinstance(raw, bytes) else str(raw)
    missing = [u for u in user_ids if u not in found]
    if missing:
        async with rt.db.global_session() as session:
            identities = await GlobalRepository(session).identities(missing)
        async with rt.redis.pipeline(transaction=False) as pipe:
            for identity in identities:
                found[identity.id] = identity.territory_code
                pipe.set(
                    cache.key(_home_key(identity.id)),
                    identity.territory_code,
                    ex=HOME_CACHE_TTL_SECONDS,
                )
            await pipe.execute()
    return found


async def forget_home(rt: AuthRuntime, user_id: uuid.UUID) -> None:
    await rt.cache.global_.delete(_home_key(user_id))


async def load_accounts(rt: AuthRuntime, user_ids: Sequence[uuid.UUID]) -> list[Account | None]:
    homes = await home_territories(rt, user_ids)
    by_territory: dict[str, list[uuid.UUID]] = defaultdict(list)
    for user_id, code in homes.items():
        by_territory[code].append(user_id)
    accounts: dict[uuid.UUID, Account] = {}
    for code, ids in by_territory.items():
        try:
            async with rt.db.territory_session(code) as session:
                rows = await TerritoryRepository(session).users_with_mfa(ids)
        except NotFound:  # the territory was deactivated: its users are not visible
            continue
        for user, has_mfa in rows:
            if user.is_active:
                accounts[user.id] = Account.of(user, code, mfa_enabled=has_mfa)
    return [accounts.get(user_id) for user_id in user_ids]


async def load_managed_territories(
    rt: AuthRuntime, user_ids: Sequence[uuid.UUID]
) -> list[frozenset[tuple[str, str]]]:
    """Per user: the (territory code, role) pairs they hold."""
    async with rt.db.global_session() as session:
        found = await GlobalRepository(session).territory_roles_of(user_ids)
    return [frozenset(found.get(user_id, ())) for user_id in user_ids]


async def load_platform_admins(rt: AuthRuntime, user_ids: Sequence[uuid.UUID]) -> list[bool]:
    async with rt.db.global_session() as session:
        admins = await GlobalRepository(session).platform_role_holders(user_ids, "platform_admin")
    return [user_id in admins for user_id in user_ids]


@dataclass(frozen=True)
class InvitationUseKey:
    territory_code: str
    invitation_id: uuid.UUID


async def load_invitation_uses(
    rt: AuthRuntime, keys: Sequence[InvitationUseKey]
) -> list[list[InvitationUse]]:
    by_territory: dict[str, list[uuid.UUID]] = defaultdict(list)
    for key in keys:
        by_territory[key.territory_code].append(key.invitation_id)
    uses: dict[uuid.UUID, list[InvitationUse]] = defaultdict(list)
    for code, ids in by_territory.items():
        async with rt.db.territory_session(code) as session:
            for use in await TerritoryRepository(session).invitation_uses(ids):
                uses[use.token_id].append(use)
    return [uses.get(key.invitation_id, []) for key in keys]


class Loaders:
    """Fresh per request, so nothing cached outlives the request that loaded it."""

    def __init__(self, rt: AuthRuntime) -> None:
        async def accounts(ids: list[uuid.UUID]) -> list[Account | None]:
            return await load_accounts(rt, ids)

        async def managed(ids: list[uuid.UUID]) -> list[frozenset[tuple[str, str]]]:
            return await load_managed_territories(rt, ids)

        async def platform_admin(ids: list[uuid.UUID]) -> list[bool]:
            return await load_platform_admins(rt, ids)

        async def invitation_uses(keys: list[InvitationUseKey]) -> list[list[InvitationUse]]:
            return await load_invitation_uses(rt, keys)

        self.accounts: DataLoader[uuid.UUID, Account | None] = DataLoader(accounts)
        self.managed_territories: DataLoader[uuid.UUID, frozenset[tuple[str, str]]] = DataLoader(
            managed
        )
        self.platform_admin: DataLoader[uuid.UUID, bool] = DataLoader(platform_admin)
        self.invitation_uses: DataLoader[InvitationUseKey, list[InvitationUse]] = DataLoader(
            invitation_uses
        )
