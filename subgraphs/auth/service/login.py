"""Login by global username and password (and a second factor once enabled), refresh, logout.

Unknown user, wrong password and inactive account fail alike (INVALID_CREDENTIALS) and take
alike long: an unknown user still costs one Argon2 verification of a dummy hash. Every attempt
counts against the account and the client IP before the password is looked at, so an active
lock-out holds even for the right password, and aliased logins in one request count each.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncSession

from core.errors import InvalidCredentials, InvalidToken, MfaRequired, NotFound, UnityPlanError
from core.kit.repository import ClientInfo
from core.ratelimit import Attempt
from subgraphs.auth import events
from subgraphs.auth.repository import GlobalRepository, TerritoryRepository
from subgraphs.auth.runtime import Account, AuthRuntime, utcnow
from subgraphs.auth.service import mfa
from subgraphs.auth.service.sessions import (
    RefreshReused,
    TokenPair,
    end_sessions,
    refresh_territory,
    roles_of,
    rotate_refresh_token,
    start_session,
)
from subgraphs.auth.tokens import token_hash


@dataclass(frozen=True)
class SignedIn:
    account: Account
    tokens: TokenPair


async def login(
    rt: AuthRuntime,
    *,
    username: str,
    password: str,
    territory_code: str | None,
    totp_code: str | None,
    client: ClientInfo,
) -> SignedIn:
    attempt = await rt.guards.login.begin(account=username.strip().lower(), ip=client.limit_ip)
    async with rt.db.global_session() as session:
        identity = await GlobalRepository(session).identity_by_username(username.strip())
    if identity is None or (
        territory_code is not None and identity.territory_code != territory_code
    ):
        await rt.hasher.verify_dummy_async()
        raise InvalidCredentials()
    code = identity.territory_code
    try:
        await rt.db.territory(code)
    except NotFound:  # a deactivated territory signs nobody in, and says no more than that
        await rt.hasher.verify_dummy_async()
        raise InvalidCredentials() from None
    roles = await roles_of(rt, identity.id)
    outcome: SignedIn | UnityPlanError
    async with rt.db.territory_session(code) as session:
        outcome = await _sign_in(
            rt,
            TerritoryRepository(session),
            code,
            identity.id,
            password,
            totp_code,
            roles,
            client,
            attempt,
        )
    if isinstance(outcome, UnityPlanError):
        raise outcome
    await attempt.succeeded(reset=["account"])
    return outcome


async def _sign_in(
    rt: AuthRuntime,
    repo: TerritoryRepository,
    code: str,
    user_id: uuid.UUID,
    password: str,
    totp_code: str | None,
    roles: list[str],
    client: ClientInfo,
    attempt: Attempt,
) -> SignedIn | UnityPlanError:
    """Sign in within the territory transaction; a failure is returned, so its audit commits."""
    user = await repo.user(user_id, for_update=True)
    if user is None:
        await rt.hasher.verify_dummy_async()
        return InvalidCredentials()
    matches, rehashed = await rt.hasher.verify_and_update(user.password_hash, password)
    if not matches or not user.is_active:
        _audit(repo, "user.login_failed", code, user.id, client, reason="credentials")
        await events.user_event(repo.session, code, "login_failed", user.id)
        return InvalidCredentials()
    if rehashed is not None:
        user.password_hash = rehashed
    has_mfa = await mfa.mfa_enabled(repo, user.id)
    if has_mfa:
        if not totp_code:
            # The password was right: withdraw this attempt's failure, but keep the history.
            await attempt.succeeded()
            return MfaRequired()
        second = await rt.guards.totp.begin(account=str(user.id), ip=client.limit_ip)
        if not await mfa.accept_second_factor(rt.secret_box, repo, user.id, totp_code):
            _audit(repo, "user.login_failed", code, user.id, client, reason="second_factor")
            return InvalidCredentials("Invalid or already used code", field="totpCode")
        await second.succeeded(reset=["account"])
    user.last_login_at = utcnow()
    tokens = await start_session(
        rt,
        repo,
        user_id=user.id,
        username=user.username,
        territory_code=code,
        roles=roles,
        client=client,
    )
    _audit(repo, "user.login", code, user.id, client, session=str(tokens.session_id))
    await events.user_event(
        repo.session, code, "logged_in", user.id, sessionId=str(tokens.session_id)
    )
    await repo.flush()
    return SignedIn(Account.of(user, code, mfa_enabled=has_mfa), tokens)


def _audit(
    repo: TerritoryRepository,
    action: str,
    code: str,
    user_id: uuid.UUID,
    client: ClientInfo,
    **changes: str,
) -> None:
    repo.audit(
        action,
        territory_code=code,
        user_id=user_id,
        resource_type="user",
        resource_id=str(user_id),
        changes=dict(changes) or None,
        client=client,
    )


@asynccontextmanager
async def _token_territory_session(rt: AuthRuntime, code: str) -> AsyncIterator[AsyncSession]:
    """The session of the territory a token names; a token of no (active) territory is unknown."""
    try:
        territory = await rt.db.territory(code)
    except NotFound as exc:
        raise InvalidToken("Invalid refresh token", reason="UNKNOWN", field="refreshToken") from exc
    async with rt.db.territory_session(territory.code) as session:
        yield session


async def refresh(rt: AuthRuntime, refresh_token: str, client: ClientInfo) -> SignedIn:
    """A new pair for a refresh token; REUSED ends the session it came from."""
    code = refresh_territory(refresh_token)
    async with _token_territory_session(rt, code) as session:
        repo = TerritoryRepository(session)
        try:
            refreshed = await rotate_refresh_token(
                rt, session, refresh_token=refresh_token, territory_code=code, client=client
            )
        except RefreshReused as reused:
            # Returned, not raised: the ending of the session must commit.
            outcome: RefreshReused | None = reused
        else:
            outcome = None
            found = await repo.users_with_mfa([refreshed.user_id])
            user, has_mfa = found[0]
            account = Account.of(user, code, mfa_enabled=has_mfa)
    if outcome is not None:
        raise InvalidToken(
            "Refresh token was already used; the session has been ended",
            reason="REUSED",
            field="refreshToken",
        )
    return SignedIn(account, refreshed.pair)


async def logout(rt: AuthRuntime, refresh_token: str, client: ClientInfo) -> None:
    """End the session of a refresh token; an unknown token is an error (as the original)."""
    code = refresh_territory(refresh_token)
    async with _token_territory_session(rt, code) as session:
        repo = TerritoryRepository(session)
        current = await repo.session_by_token_hash(token_hash(refresh_token))
        if current is None:
            raise InvalidToken("Invalid refresh token", reason="UNKNOWN", field="refreshToken")
        await end_sessions(
            rt,
            repo,
            territory_code=code,
            user_id=current.user_id,
            reason="LOGOUT",
            only=current.id,
        )
        _audit(repo, "user.logout", code, current.user_id, client, session=str(current.id))
        await events.user_event(
            session, code, "logged_out", current.user_id, sessionId=str(current.id)
        )
