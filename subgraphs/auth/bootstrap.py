"""Make a territory usable without SQL: a platform admin and a first invitation.

`bootstrap_territory` is idempotent: the admin is created once, in the first territory it is
bootstrapped for (its password written to `<DEVSTACK_DIR>/admin-password`, or
`admin-password-<username>` for other names, and never overwritten), and a valid GROUP
invitation the admin made into the territory is reused while it has uses and time left, else a
new one is issued. An existing admin bootstraps any other territory: the invitation is stored
there with the admin as its creator from another territory.
"""

from __future__ import annotations

import os
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path

from sqlalchemy import select

from core.cache import create_redis
from core.config import Settings
from core.db import Database
from core.kit.repository import ClientInfo
from subgraphs.auth.models import InvitationToken, User, UserIdentity
from subgraphs.auth.repository import GlobalRepository, TerritoryRepository
from subgraphs.auth.runtime import AuthRuntime, utcnow
from subgraphs.auth.service.invitations import GROUP, audit_remote_invitation, new_invitation
from subgraphs.auth.service.registration import check_username, identity_hash
from subgraphs.auth.service.territories import grant_platform_admin
from subgraphs.auth.tokens import invitation_token_in_clear

ADMIN_USERNAME = "admin"
DEMO_TERRITORY = "dk"
BOOTSTRAP_INVITATION_USES = 100
BOOTSTRAP_INVITATION_DAYS = 30
# Invitations that run out within this many days are replaced rather than handed out again.
MIN_DAYS_LEFT = 1


@dataclass(frozen=True)
class BootstrapResult:
    territory_code: str
    admin_username: str
    admin_territory: str
    # None: the admin existed before and no password file of ours holds its password.
    admin_password_file: Path | None
    admin_created: bool
    invitation_token: str
    invitation_expires_at: str

    def summary(self) -> list[str]:
        """What `unityplan dev` prints about the admin and the invitation."""
        state = "created now" if self.admin_created else "already there"
        password = f", password in {self.admin_password_file}" if self.admin_password_file else ""
        return [
            f"platform admin: {self.admin_username} (of {self.admin_territory}, {state}){password}",
            f"invitation token: {self.invitation_token} "
            f"(GROUP, into {self.territory_code}, expires {self.invitation_expires_at[:10]})",
        ]


def password_file(devstack_dir: Path, username: str) -> Path:
    """Where the generated password of bootstrap admin `username` is kept."""
    name = "admin-password" if username == ADMIN_USERNAME else f"admin-password-{username}"
    return devstack_dir / name


def _admin_password(path: Path) -> str:
    """The password kept in `path` for this admin name, or a new one written there (0600)."""
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(18)
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(descriptor, "w", encoding="utf-8") as file:
        file.write(password + "\n")
    return password


@dataclass(frozen=True)
class IssuedInvitation:
    """A stored invitation with its token in clear (the database keeps it sealed)."""

    id: uuid.UUID
    token: str
    max_uses: int
    expires_at: datetime

    @classmethod
    def of(cls, rt: AuthRuntime, row: InvitationToken) -> IssuedInvitation:
        token = invitation_token_in_clear(rt.secret_box, row.id, row.token)
        return cls(row.id, token, row.max_uses, row.expires_at)


@dataclass(frozen=True)
class _Admin:
    id: uuid.UUID
    territory_code: str
    created: bool


async def _ensure_admin(rt: AuthRuntime, code: str, username: str, password_path: Path) -> _Admin:
    async with rt.db.global_session() as session:
        identity = await GlobalRepository(session).identity_by_username(username)
    if identity is not None:
        await grant_platform_admin(rt, identity.id)
        return _Admin(identity.id, identity.territory_code, created=False)
    check_username(username)
    territory = await rt.db.territory(code)
    password = _admin_password(password_path)
    password_hash = await rt.hasher.hash_async(password)
    user_id = uuid.uuid4()
    same_pod = territory.pod_id == rt.db.default_pod
    identity_row = UserIdentity(
        id=user_id,
        username=username,
        public_key_hash=identity_hash(user_id),
        territory_code=code,
        territory_user_id=user_id,
    )
    if not same_pod:
        async with rt.db.global_session() as session:
            session.add(identity_row)
    async with rt.db.territory_session(code) as session:
        if same_pod:
            session.add(identity_row)
            await session.flush()
        session.add(
            User(
                id=user_id,
                username=username,
                password_hash=password_hash,
                display_name="Platform admin",
                is_verified=True,
                is_active=True,
            )
        )
        TerritoryRepository(session).audit(
            "user.bootstrap_admin",
            territory_code=code,
            user_id=user_id,
            resource_type="user",
            resource_id=str(user_id),
        )
    await grant_platform_admin(rt, user_id)
    return _Admin(user_id, code, created=True)


async def issue_invitation(
    rt: AuthRuntime,
    code: str,
    *,
    creator_id: uuid.UUID | None,
    creator_territory: str | None = None,
    token_type: str = GROUP,
    email: str | None = None,
    max_uses: int | None = BOOTSTRAP_INVITATION_USES,
    expires_in_days: int = BOOTSTRAP_INVITATION_DAYS,
) -> IssuedInvitation:
    """Store a new invitation in territory `code` (operators' and tests' entry point), made by
    `creator_id` of territory `creator_territory` (default: `code`), or by the platform."""
    remote = creator_id is not None and creator_territory not in (None, code)
    invitation = new_invitation(
        rt.secret_box,
        creator_id=creator_id,
        creator_territory=creator_territory if remote else None,
        token_type=token_type,
        email=email,
        max_uses=max_uses,
        expires_in_days=expires_in_days,
    )
    changes: dict[str, object] = {
        "type": token_type,
        "maxUses": invitation.max_uses,
        "bootstrap": True,
    }
    async with rt.db.territory_session(code) as session:
        repo = TerritoryRepository(session)
        repo.add(invitation)
        repo.audit(
            "invitation.create",
            territory_code=code,
            user_id=creator_id,
            resource_type="invitation",
            resource_id=str(invitation.id),
            changes={**changes, "creatorTerritory": creator_territory} if remote else changes,
        )
    if remote and creator_territory is not None:
        async with rt.db.territory_session(creator_territory) as session:
            audit_remote_invitation(
                TerritoryRepository(session),
                invitation,
                home_code=creator_territory,
                territory_code=code,
                client=ClientInfo(),
            )
    return IssuedInvitation.of(rt, invitation)


async def _usable_invitation(rt: AuthRuntime, code: str, admin: _Admin) -> IssuedInvitation | None:
    horizon = utcnow() + timedelta(days=MIN_DAYS_LEFT)
    creator_home = None if admin.territory_code == code else admin.territory_code
    async with rt.db.territory_session(code) as session:
        statement = (
            select(InvitationToken)
            .where(
                InvitationToken.created_by_user_id == admin.id,
                InvitationToken.creator_territory.is_not_distinct_from(creator_home),
                InvitationToken.token_type == GROUP,
                InvitationToken.is_active.is_(True),
                InvitationToken.expires_at > horizon,
                InvitationToken.current_uses < InvitationToken.max_uses,
            )
            .order_by(InvitationToken.created_at.desc())
            .limit(1)
        )
        found = (await session.execute(statement)).scalar_one_or_none()
    return IssuedInvitation.of(rt, found) if found is not None else None


async def bootstrap_territory(
    settings: Settings,
    code: str,
    *,
    admin_username: str = ADMIN_USERNAME,
    db: Database | None = None,
) -> BootstrapResult:
    """A platform admin (created once, in territory `code` unless it exists) and a usable
    GROUP invitation into territory `code` made by that admin."""
    own_db = db is None
    database = db if db is not None else Database(settings.database)
    redis = create_redis(settings.redis)
    try:
        rt = AuthRuntime.create(settings, database, redis)
        await rt.db.territory(code)  # NOT_FOUND before anything is written
        password_path = password_file(settings.devstack.dir, admin_username)
        admin = await _ensure_admin(rt, code, admin_username, password_path)
        invitation = await _usable_invitation(rt, code, admin)
        if invitation is None:
            invitation = await issue_invitation(
                rt, code, creator_id=admin.id, creator_territory=admin.territory_code
            )
        return BootstrapResult(
            territory_code=code,
            admin_username=admin_username,
            admin_territory=admin.territory_code,
            admin_password_file=(
                password_path if admin.created or password_path.exists() else None
            ),
            admin_created=admin.created,
            invitation_token=invitation.token,
            invitation_expires_at=invitation.expires_at.isoformat(),
        )
    finally:
        await redis.aclose()
        if own_db:
            await database.dispose()


async def bootstrap_demo(settings: Settings) -> BootstrapResult:
    """What `unityplan dev` runs: the demo territory `dk` made usable."""
    return await bootstrap_territory(settings, DEMO_TERRITORY)
