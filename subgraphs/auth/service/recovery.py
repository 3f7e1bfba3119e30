"""Password reset, email verification and account erasure.

Reset and verification tokens are single use, 256 bits, stored hashed, 30 minutes and 24 hours
by default; asking for a reset never tells whether the username exists. Erasure removes the
personal data of the home territory in one transaction and tells every service through
`global.user.deleted`.
"""

from __future__ import annotations

import uuid
from datetime import timedelta

from core.errors import BadUserInput, InvalidCredentials, InvalidToken, NotFound
from core.kit.repository import ClientInfo
from core.security import Principal
from subgraphs.auth import events
from subgraphs.auth.loaders import forget_home
from subgraphs.auth.mailer import Mail
from subgraphs.auth.models import AccountToken
from subgraphs.auth.passwords import check_password
from subgraphs.auth.repository import GlobalRepository, TerritoryRepository
from subgraphs.auth.runtime import AuthRuntime, utcnow
from subgraphs.auth.service.invitations import INTO_TERRITORY
from subgraphs.auth.service.sessions import end_sessions
from subgraphs.auth.tokens import new_territory_token, territory_of, token_hash

PASSWORD_RESET = "password_reset"  # noqa: S105 - a token purpose, not a secret
EMAIL_VERIFICATION = "email_verification"
RESET_REQUESTS_PER_HOUR = 5
VERIFICATION_REQUESTS_PER_HOUR = 5


async def request_password_reset(rt: AuthRuntime, username: str, client: ClientInfo) -> None:
    """Mail a reset token when the account exists and has an email; silent otherwise."""
    # Limit per username and per IP; the reply is the same either way.
    await rt.guards.requests.enforce(
        f"reset-request:user:{username.strip().lower()}", RESET_REQUESTS_PER_HOUR, 3600
    )
    if client.limit_ip:
        await rt.guards.requests.enforce(
            f"reset-request:ip:{client.limit_ip}", RESET_REQUESTS_PER_HOUR * 4, 3600
        )
    async with rt.db.global_session() as session:
        identity = await GlobalRepository(session).identity_by_username(username.strip())
    if identity is None:
        return
    code = identity.territory_code
    async with rt.db.territory_session(code) as session:
        repo = TerritoryRepository(session)
        user = await repo.user(identity.id)
        if user is None or not user.is_active or not user.email:
            return
        raw = await _issue(
            repo,
            code,
            user.id,
            PASSWORD_RESET,
            user.email,
            rt.settings.auth.password_reset_ttl_seconds,
        )
        repo.audit(
            "user.password_reset_request",
            territory_code=code,
            user_id=user.id,
            resource_type="user",
            resource_id=str(user.id),
            client=client,
        )
        minutes = rt.settings.auth.password_reset_ttl_seconds // 60
        mail = Mail(
            to=user.email,
            subject="Reset your UnityPlan password",
            body=(
                f"Hello {user.username},\n\nsomeone asked to reset the password of "
                f"{user.username}@{code}. If it was you, use this token within {minutes} "
                f"minutes:\n\n{raw}\n\nIf it was not you, ignore this mail.\n"
            ),
        )
    rt.mail.post(mail)


async def _issue(
    repo: TerritoryRepository,
    territory_code: str,
    user_id: uuid.UUID,
    purpose: str,
    email: str,
    ttl_seconds: int,
) -> str:
    now = utcnow()
    await repo.retire_account_tokens(user_id, purpose, now)
    raw = new_territory_token(territory_code)
    repo.add(
        AccountToken(
            token_hash=token_hash(raw),
            user_id=user_id,
            purpose=purpose,
            email=email,
            expires_at=now + timedelta(seconds=ttl_seconds),
            created_at=now,
        )
    )
    await repo.flush()
    return raw


async def _redeem(repo: TerritoryRepository, raw: str, purpose: str) -> AccountToken:
    token = await repo.account_token(token_hash(raw), purpose)
    if token is None:
        raise InvalidToken("Invalid token", reason="UNKNOWN", field="token")
    if token.used_at is not None:
        raise InvalidToken("This token was already used", reason="USED_UP", field="token")
    if token.expires_at <= utcnow():
        raise InvalidToken("This token has expired", reason="EXPIRED", field="token")
    token.used_at = utcnow()
    return token


def _token_territory(raw: str) -> str:
    code = territory_of(raw)
    if code is None:
        raise InvalidToken("Invalid token", reason="UNKNOWN", field="token")
    return code


async def reset_password(rt: AuthRuntime, raw: str, new_password: str, client: ClientInfo) -> None:
    """Set a new password with a reset token; every session of the account ends."""
    attempt = await rt.guards.account_tokens.begin(ip=client.limit_ip)
    code = _token_territory(raw)
    async with rt.db.territory_session(code) as session:
        repo = TerritoryRepository(session)
        token = await _redeem(repo, raw, PASSWORD_RESET)
        user = await repo.user(token.user_id, for_update=True)
        if user is None or not user.is_active:
            raise InvalidToken("Invalid token", reason="UNKNOWN", field="token")
        check_password(new_password, username=user.username, field="newPassword")
        user.password_hash = await rt.hasher.hash_async(new_password)
        ended = await end_sessions(
            rt, repo, territory_code=code, user_id=user.id, reason="PASSWORD_RESET"
        )
        repo.audit(
            "user.password_reset",
            territory_code=code,
            user_id=user.id,
            resource_type="user",
            resource_id=str(user.id),
            changes={"sessionsEnded": len(ended)},
            client=client,
        )
        await events.user_event(session, code, "password_changed", user.id, reset=True)
    await attempt.succeeded()


async def request_email_verification(
    rt: AuthRuntime, viewer: Principal, client: ClientInfo
) -> None:
    await rt.guards.requests.enforce(
        f"verify-request:{viewer.user_id}", VERIFICATION_REQUESTS_PER_HOUR, 3600
    )
    code = viewer.territory_code
    async with rt.db.territory_session(code) as session:
        repo = TerritoryRepository(session)
        user = await repo.user(uuid.UUID(viewer.user_id))
        if user is None:
            raise NotFound("Account not found")
        if not user.email:
            raise BadUserInput("The account has no email address", field="email")
        if user.is_verified:
            return
        raw = await _issue(
            repo,
            code,
            user.id,
            EMAIL_VERIFICATION,
            user.email,
            rt.settings.auth.email_verification_ttl_seconds,
        )
        mail = Mail(
            to=user.email,
            subject="Confirm your UnityPlan email address",
            body=(
                f"Hello {user.username},\n\nconfirm this address for {user.username}@{code} "
                f"with this token:\n\n{raw}\n"
            ),
        )
    rt.mail.post(mail)


async def verify_email(rt: AuthRuntime, raw: str, client: ClientInfo) -> uuid.UUID:
    attempt = await rt.guards.account_tokens.begin(ip=client.limit_ip)
    code = _token_territory(raw)
    async with rt.db.territory_session(code) as session:
        repo = TerritoryRepository(session)
        token = await _redeem(repo, raw, EMAIL_VERIFICATION)
        user = await repo.user(token.user_id, for_update=True)
        if user is None or (user.email or "").lower() != (token.email or "").lower():
            # The address changed since the mail went out: this token proves nothing now.
            raise InvalidToken("Invalid token", reason="UNKNOWN", field="token")
        user.is_verified = True
        repo.audit(
            "user.email_verified",
            territory_code=code,
            user_id=user.id,
            resource_type="user",
            resource_id=str(user.id),
            client=client,
        )
        await events.user_event(session, code, "email_verified", user.id)
    await attempt.succeeded()
    return token.user_id


async def _erase_invitations_elsewhere(
    rt: AuthRuntime, user_id: uuid.UUID, home: str, territories: list[str]
) -> None:
    """The invitations an erased user made into other territories go, and the users they
    invited there no longer name them (as in the home territory)."""
    for territory_code in territories:
        try:
            async with rt.db.territory_session(territory_code) as session:
                repo = TerritoryRepository(session)
                await repo.delete_invitations_created_by(user_id, home=home)
                await repo.forget_inviter(user_id, home=home)
        except NotFound:
            continue  # deactivated since: its data is not served


async def delete_account(
    rt: AuthRuntime, viewer: Principal, password: str, client: ClientInfo
) -> None:
    """Erase the caller's account after checking the password; every session ends now."""
    code = viewer.territory_code
    user_id = uuid.UUID(viewer.user_id)
    attempt = await rt.guards.login.begin(account=viewer.username.lower(), ip=client.limit_ip)
    async with rt.db.territory_session(code) as session:
        user = await TerritoryRepository(session).user(user_id)
        password_hash = user.password_hash if user is not None else None
    if password_hash is None or not await rt.hasher.verify_async(password_hash, password):
        raise InvalidCredentials("The password is wrong", field="password")
    await attempt.succeeded()
    same_pod = (await rt.db.territory(code)).pod_id == rt.db.default_pod
    async with rt.db.territory_session(code) as session:
        repo = TerritoryRepository(session)
        await end_sessions(rt, repo, territory_code=code, user_id=user_id, reason="ACCOUNT_DELETED")
        await repo.delete_invitations_created_by(user_id)
        await repo.forget_inviter(user_id)
        invited_into = await repo.territories_invited_into(user_id, INTO_TERRITORY)
        await repo.delete_mfa(user_id)
        # The audit trail stays (append-only) without the device details; it names the account
        # by id only, which points at nothing once the row is gone.
        await repo.erase_audit_device_details(user_id)
        repo.audit(
            "user.delete",
            territory_code=code,
            user_id=user_id,
            resource_type="user",
            resource_id=str(user_id),
        )
        await repo.delete_user(user_id)
        if same_pod:
            await GlobalRepository(session).delete_identity(user_id)
        await events.user_event(session, code, "deleted", user_id)
        await events.publish_global(
            session, "user", "deleted", {"userId": str(user_id), "territoryCode": code}
        )
    if not same_pod:
        async with rt.db.global_session() as session:
            await GlobalRepository(session).delete_identity(user_id)
    await _erase_invitations_elsewhere(rt, user_id, code, invited_into)
    await forget_home(rt, user_id)
