"""Invitation-only registration, all or nothing.

Checks, in order: territory exists and is active; invitation valid for it; username format and
global (case-insensitive) uniqueness; email unique in the territory. Then, in one transaction:
the territory user, the global identity, the invitation use, the first session, the audit row
and the events.

A territory on the default pod shares its database with `global`, so the identity is written in
that same transaction. For a territory on another pod no transaction spans both databases: the
identity is reserved first in its own global transaction (the unique username index makes the
reservation the arbiter of races), then the territory transaction commits, and on any failure
the reservation is deleted again (compensation). A crash between the two leaves a reservation
without a user; it blocks only that username and is visible as an identity whose
`territory_user_id` has no row in the territory.
"""

from __future__ import annotations

import hashlib
import re
import uuid
from dataclasses import dataclass

from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from core.db import Territory
from core.errors import BadUserInput, Conflict
from core.kit.repository import ClientInfo
from subgraphs.auth import events
from subgraphs.auth.models import User, UserIdentity
from subgraphs.auth.passwords import check_password
from subgraphs.auth.repository import GlobalRepository, TerritoryRepository
from subgraphs.auth.runtime import Account, AuthRuntime, utcnow
from subgraphs.auth.service.invitations import (
    InvalidReason,
    check_invitation,
    consume_invitation,
    invalid_token,
    invited_by,
    validate_email,
)
from subgraphs.auth.service.sessions import TokenPair, start_session

USERNAME = re.compile(r"^[A-Za-z0-9_]{3,50}$")
MAX_NAME_LENGTH = 200


@dataclass(frozen=True)
class Registration:
    territory_code: str
    invitation_token: str
    username: str
    password: str
    email: str | None = None
    full_name: str | None = None
    display_name: str | None = None


@dataclass(frozen=True)
class Registered:
    account: Account
    tokens: TokenPair


def identity_hash(user_id: uuid.UUID) -> str:
    """The identity hash kept in `global` (until users bring a key of their own)."""
    return hashlib.sha256(f"unityplan.identity:{user_id}".encode()).hexdigest()


def check_username(username: str) -> str:
    if not USERNAME.fullmatch(username):
        raise BadUserInput("Usernames are 3 to 50 letters, digits or underscores", field="username")
    return username


def _optional_text(value: str | None, field: str) -> str | None:
    if value is None or not value.strip():
        return None
    if len(value) > MAX_NAME_LENGTH:
        raise BadUserInput(f"At most {MAX_NAME_LENGTH} characters", field=field)
    return value.strip()


async def register(rt: AuthRuntime, form: Registration, client: ClientInfo) -> Registered:
    territory = await rt.db.territory(form.territory_code)
    # Read-only pre-checks in the contract's order, before the (slow) password hash.
    async with rt.db.territory_session(territory.code) as session:
        found = await TerritoryRepository(session).invitation_by_token(form.invitation_token)
        checked = check_invitation(found, email=form.email, now=utcnow())
        if checked.reason is not None:
            raise invalid_token(checked.reason)
    check_username(form.username)
    email = validate_email(form.email) if form.email else None
    full_name = _optional_text(form.full_name, "fullName")
    display_name = _optional_text(form.display_name, "displayName")
    check_password(form.password, username=form.username)
    password_hash = await rt.hasher.hash_async(form.password)

    user_id = uuid.uuid4()
    identity = UserIdentity(
        id=user_id,
        username=form.username,
        public_key_hash=identity_hash(user_id),
        territory_code=territory.code,
        territory_user_id=user_id,
    )
    user = User(
        id=user_id,
        username=form.username,
        email=email,
        password_hash=password_hash,
        full_name=full_name,
        display_name=display_name,
        is_verified=False,
        is_active=True,
    )
    same_pod = territory.pod_id == rt.db.default_pod
    if not same_pod:
        await _reserve_identity(rt, identity)
    try:
        async with rt.db.territory_session(territory.code) as session:
            tokens = await _write_registration(
                rt, session, territory, form, user, identity if same_pod else None, client
            )
            account = Account.of(user, territory.code, mfa_enabled=False)
    except BaseException:
        if not same_pod:
            await _release_identity(rt, user_id)
        raise
    return Registered(account, tokens)


async def _reserve_identity(rt: AuthRuntime, identity: UserIdentity) -> None:
    try:
        async with rt.db.global_session() as session:
            repo = GlobalRepository(session)
            if await repo.username_taken(identity.username):
                raise _username_taken()
            repo.add(identity)
            await repo.flush()
    except IntegrityError as exc:
        raise _username_taken() from exc


async def _release_identity(rt: AuthRuntime, user_id: uuid.UUID) -> None:
    async with rt.db.global_session() as session:
        await GlobalRepository(session).delete_identity(user_id)


def _username_taken() -> Conflict:
    return Conflict("This username is taken", field="username")


async def _write_registration(
    rt: AuthRuntime,
    session: AsyncSession,
    territory: Territory,
    form: Registration,
    user: User,
    identity: UserIdentity | None,
    client: ClientInfo,
) -> TokenPair:
    repo = TerritoryRepository(session)
    # Locking the invitation serialises registrations racing for its last use.
    invitation = await repo.invitation_by_token(form.invitation_token, for_update=True)
    checked = check_invitation(invitation, email=form.email, now=utcnow())
    if checked.reason is not None or invitation is None:
        raise invalid_token(checked.reason or InvalidReason.UNKNOWN)
    if identity is not None:
        global_repo = GlobalRepository(session)
        if await global_repo.username_taken(user.username):
            raise _username_taken()
    if user.email is not None and await repo.email_taken(user.email):
        raise Conflict("This email is already registered here", field="email")
    user.invited_by_user_id = invitation.created_by_user_id
    user.invited_by_territory = invitation.creator_territory
    user.invitation_by_token_id = invitation.id
    if identity is not None:
        # The identity first: its unique username index decides a race between two
        # registrations, and the loser waits here instead of half-writing.
        repo.add(identity)
        await _flush_unique(repo)
    repo.add(user)
    await _flush_unique(repo)
    await consume_invitation(
        repo, invitation, user_id=user.id, client=client, territory_code=territory.code
    )
    tokens = await start_session(
        rt,
        repo,
        user_id=user.id,
        username=user.username,
        territory_code=territory.code,
        roles=[],
        client=client,
    )
    repo.audit(
        "user.register",
        territory_code=territory.code,
        user_id=user.id,
        resource_type="user",
        resource_id=str(user.id),
        changes=invited_by(invitation, territory.code),
        client=client,
    )
    await events.user_event(session, territory.code, "registered", user.id, username=user.username)
    await events.publish_global(
        session,
        "user",
        "registered",
        {"userId": str(user.id), "territoryCode": territory.code},
    )
    await repo.flush()
    return tokens


async def _flush_unique(repo: TerritoryRepository) -> None:
    try:
        await repo.flush()
    except IntegrityError as exc:
        detail = str(exc.orig).lower() if exc.orig is not None else ""
        if "email" in detail:
            raise Conflict("This email is already registered here", field="email") from exc
        raise _username_taken() from exc
