"""The signed-in user's own account: sessions, password change, MFA, invitations they made.

Each use case opens the transaction of the caller's home territory, and tells the revocation
registry about ended sessions only after that transaction committed.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence

from core.errors import BadUserInput, InvalidCredentials, NotFound
from core.kit.repository import ClientInfo
from core.security import Principal
from subgraphs.auth import events
from subgraphs.auth.models import InvitationToken, Session, User
from subgraphs.auth.passwords import check_password
from subgraphs.auth.repository import TerritoryRepository
from subgraphs.auth.runtime import AuthRuntime, utcnow
from subgraphs.auth.service import invitations, mfa
from subgraphs.auth.service.sessions import end_sessions

# Enough for any community organiser; a stolen token cannot flood the territory with invitations.
INVITATIONS_PER_DAY = 100


def _user_id(viewer: Principal) -> uuid.UUID:
    return uuid.UUID(viewer.user_id)


async def _own_user(repo: TerritoryRepository, viewer: Principal) -> User:
    user = await repo.user(_user_id(viewer), for_update=True)
    if user is None or not user.is_active:
        raise NotFound("Account not found")
    return user


async def my_sessions(rt: AuthRuntime, viewer: Principal) -> Sequence[Session]:
    """Live sessions, newest first; expired ones are purged on the way."""
    async with rt.db.territory_session(viewer.territory_code) as session:
        repo = TerritoryRepository(session)
        now = utcnow()
        await repo.purge_expired_sessions(_user_id(viewer), now=now)
        return await repo.sessions_of(_user_id(viewer), now=now)


async def logout_all(rt: AuthRuntime, viewer: Principal, client: ClientInfo) -> int:
    code = viewer.territory_code
    async with rt.db.territory_session(code) as session:
        repo = TerritoryRepository(session)
        ended = await end_sessions(
            rt, repo, territory_code=code, user_id=_user_id(viewer), reason="LOGOUT_ALL"
        )
        repo.audit(
            "user.logout_all",
            territory_code=code,
            user_id=_user_id(viewer),
            resource_type="user",
            resource_id=viewer.user_id,
            changes={"sessions": len(ended)},
            client=client,
        )
        await events.user_event(session, code, "logged_out", _user_id(viewer), all=True)
    return len(ended)


async def revoke_session(
    rt: AuthRuntime, viewer: Principal, session_id: uuid.UUID, client: ClientInfo
) -> None:
    """End one of the caller's sessions; another user's session id reads as not found."""
    code = viewer.territory_code
    async with rt.db.territory_session(code) as session:
        repo = TerritoryRepository(session)
        ended = await end_sessions(
            rt,
            repo,
            territory_code=code,
            user_id=_user_id(viewer),
            reason="REVOKED",
            only=session_id,
        )
        if not ended:
            raise NotFound("Session not found", field="id")
        repo.audit(
            "session.revoke",
            territory_code=code,
            user_id=_user_id(viewer),
            resource_type="session",
            resource_id=str(session_id),
            client=client,
        )


async def change_password(
    rt: AuthRuntime, viewer: Principal, current: str, new: str, client: ClientInfo
) -> None:
    """Verify the current password, store the new one, end every other session."""
    code = viewer.territory_code
    attempt = await rt.guards.login.begin(account=viewer.username.lower(), ip=client.limit_ip)
    async with rt.db.territory_session(code) as session:
        repo = TerritoryRepository(session)
        user = await _own_user(repo, viewer)
        password_hash = user.password_hash
    if not await rt.hasher.verify_async(password_hash, current):
        raise InvalidCredentials("The current password is wrong", field="currentPassword")
    await attempt.succeeded()
    check_password(new, username=viewer.username, field="newPassword")
    if new == current:
        raise BadUserInput("Choose a password you have not used here", field="newPassword")
    new_hash = await rt.hasher.hash_async(new)
    async with rt.db.territory_session(code) as session:
        repo = TerritoryRepository(session)
        user = await _own_user(repo, viewer)
        user.password_hash = new_hash
        ended = await end_sessions(
            rt,
            repo,
            territory_code=code,
            user_id=user.id,
            reason="PASSWORD_CHANGED",
            keep=uuid.UUID(viewer.session_id),
        )
        repo.audit(
            "user.password_change",
            territory_code=code,
            user_id=user.id,
            resource_type="user",
            resource_id=str(user.id),
            changes={"sessionsEnded": len(ended)},
            client=client,
        )
        await events.user_event(session, code, "password_changed", user.id)


async def enroll_totp(rt: AuthRuntime, viewer: Principal) -> mfa.Enrollment:
    async with rt.db.territory_session(viewer.territory_code) as session:
        repo = TerritoryRepository(session)
        user = await _own_user(repo, viewer)
        return await mfa.enroll(rt.secret_box, repo, user, viewer.territory_code)


async def confirm_totp(
    rt: AuthRuntime, viewer: Principal, code: str, client: ClientInfo
) -> list[str]:
    attempt = await rt.guards.totp.begin(account=viewer.user_id, ip=client.limit_ip)
    async with rt.db.territory_session(viewer.territory_code) as session:
        repo = TerritoryRepository(session)
        user = await _own_user(repo, viewer)
        codes = await mfa.confirm(rt.secret_box, repo, user, viewer.territory_code, code, client)
    await attempt.succeeded(reset=["account"])
    return codes


async def disable_totp(rt: AuthRuntime, viewer: Principal, code: str, client: ClientInfo) -> None:
    attempt = await rt.guards.totp.begin(account=viewer.user_id, ip=client.limit_ip)
    async with rt.db.territory_session(viewer.territory_code) as session:
        repo = TerritoryRepository(session)
        user = await _own_user(repo, viewer)
        await mfa.disable(rt.secret_box, repo, user, viewer.territory_code, code, client)
    await attempt.succeeded(reset=["account"])


async def my_invitations(
    rt: AuthRuntime, viewer: Principal, territory_code: str | None = None
) -> Sequence[InvitationToken]:
    """Invitations the viewer made into `territory_code` (default: their own territory); the
    caller has checked that they may invite there."""
    code = territory_code or viewer.territory_code
    home = None if code == viewer.territory_code else viewer.territory_code
    async with rt.db.territory_session(code) as session:
        repo = TerritoryRepository(session)
        return await repo.invitations_created_by(_user_id(viewer), home=home)


async def create_invitation(
    rt: AuthRuntime,
    viewer: Principal,
    *,
    territory_code: str | None = None,
    token_type: str,
    email: str | None,
    max_uses: int | None,
    expires_in_days: int | None,
    client: ClientInfo,
) -> InvitationToken:
    """An invitation into `territory_code` (default: the viewer's own); the caller has checked
    that the viewer may invite there. Into another territory, it is stored and audited there
    and audited again, with the device details, in the viewer's home territory."""
    await rt.guards.requests.enforce(
        f"create-invitation:{viewer.user_id}", INVITATIONS_PER_DAY, 86400
    )
    home = viewer.territory_code
    target = territory_code or home
    if target != home:
        await rt.db.territory(target)  # NOT_FOUND before anything is written
        async with rt.db.territory_session(home) as session:
            await _own_user(TerritoryRepository(session), viewer)
    async with rt.db.territory_session(target) as session:
        repo = TerritoryRepository(session)
        if target == home:
            await _own_user(repo, viewer)
        invitation = await invitations.create_invitation(
            rt.secret_box,
            repo,
            territory_code=target,
            creator_id=_user_id(viewer),
            creator_territory=home,
            token_type=token_type,
            email=email,
            max_uses=max_uses,
            expires_in_days=expires_in_days,
            client=client,
        )
    if target != home:
        async with rt.db.territory_session(home) as session:
            invitations.audit_remote_invitation(
                TerritoryRepository(session),
                invitation,
                home_code=home,
                territory_code=target,
                client=client,
            )
    return invitation


async def revoke_invitation(
    rt: AuthRuntime,
    viewer: Principal,
    invitation_id: uuid.UUID,
    client: ClientInfo,
    territory_code: str | None = None,
) -> None:
    code = territory_code or viewer.territory_code
    async with rt.db.territory_session(code) as session:
        await invitations.revoke_invitation(
            TerritoryRepository(session),
            territory_code=code,
            invitation_id=invitation_id,
            caller_id=_user_id(viewer),
            caller_territory=viewer.territory_code,
            client=client,
        )
