"""Make a territory usable without SQL: a platform admin and a first invitation.

`bootstrap_territory` is idempotent: the admin is created once (its password written to
`<DEVSTACK_DIR>/admin-password` and reused), and a valid GROUP invitation made by the admin is
reused while it has uses and time left, else a new one is issued.
"""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from core.cache import create_redis
from core.config import Settings
from core.db import Database
from subgraphs.auth.models import InvitationToken, User, UserIdentity
from subgraphs.auth.repository import GlobalRepository, TerritoryRepository
from subgraphs.auth.service._runtime import AuthRuntime, utcnow
from subgraphs.auth.service.invitations import GROUP, new_invitation
from subgraphs.auth.service.registration import identity_hash
from subgraphs.auth.service.territories import grant_platform_admin

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
    admin_password_file: Path
    admin_created: bool
    invitation_token: str
    invitation_expires_at: str

    def describe(self) -> str:
        created = "created" if self.admin_created else "exists"
        return (
            f"territory {self.territory_code}: platform admin '{self.admin_username}' ({created}), "
            f"password in {self.admin_password_file}; "
            f"invitation {self.invitation_token} (expires {self.invitation_expires_at})"
        )


def _admin_password(path: Path) -> str:
    """The admin's password from `path`, or a new one written there (mode 0600)."""
    if path.exists():
        return path.read_text().strip()
    password = secrets.token_urlsafe(18)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.touch(mode=0o600)
    path.write_text(password + "\n")
    return password


async def _ensure_admin(
    rt: AuthRuntime, code: str, username: str, password_file: Path
) -> tuple[uuid.UUID, bool]:
    async with rt.db.global_session() as session:
        identity = await GlobalRepository(session).identity_by_username(username)
    if identity is not None:
        await grant_platform_admin(rt, identity.id)
        return identity.id, False
    password = _admin_password(password_file)
    password_hash = await rt.hasher.hash_async(password)
    user_id = uuid.uuid4()
    territory = await rt.db.territory(code)
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
    return user_id, True


async def issue_invitation(
    rt: AuthRuntime,
    code: str,
    *,
    creator_id: uuid.UUID | None,
    token_type: str = GROUP,
    email: str | None = None,
    max_uses: int | None = BOOTSTRAP_INVITATION_USES,
    expires_in_days: int = BOOTSTRAP_INVITATION_DAYS,
) -> InvitationToken:
    """Store a new invitation in territory `code` (operators' and tests' entry point)."""
    invitation = new_invitation(
        creator_id=creator_id,
        token_type=token_type,
        email=email,
        max_uses=max_uses,
        expires_in_days=expires_in_days,
    )
    async with rt.db.territory_session(code) as session:
        repo = TerritoryRepository(session)
        repo.add(invitation)
        repo.audit(
            "invitation.create",
            territory_code=code,
            user_id=creator_id,
            resource_type="invitation",
            resource_id=str(invitation.id),
            changes={"type": token_type, "maxUses": invitation.max_uses, "bootstrap": True},
        )
    return invitation


async def _usable_invitation(
    rt: AuthRuntime, code: str, creator_id: uuid.UUID
) -> InvitationToken | None:
    horizon = utcnow() + timedelta(days=MIN_DAYS_LEFT)
    async with rt.db.territory_session(code) as session:
        statement = (
            select(InvitationToken)
            .where(
                InvitationToken.created_by_user_id == creator_id,
                InvitationToken.token_type == GROUP,
                InvitationToken.is_active.is_(True),
                InvitationToken.expires_at > horizon,
                InvitationToken.current_uses < InvitationToken.max_uses,
            )
            .order_by(InvitationToken.created_at.desc())
            .limit(1)
        )
        return (await session.execute(statement)).scalar_one_or_none()


async def bootstrap_territory(
    settings: Settings,
    code: str,
    *,
    admin_username: str = ADMIN_USERNAME,
    db: Database | None = None,
) -> BootstrapResult:
    """A platform admin (created once) and a usable GROUP invitation in territory `code`."""
    own_db = db is None
    database = db if db is not None else Database(settings.database)
    redis = create_redis(settings.redis)
    try:
        rt = AuthRuntime.create(settings, database, redis)
        password_file = settings.devstack.dir / "admin-password"
        admin_id, created = await _ensure_admin(rt, code, admin_username, password_file)
        invitation = await _usable_invitation(rt, code, admin_id)
        if invitation is None:
            invitation = await issue_invitation(rt, code, creator_id=admin_id)
        return BootstrapResult(
            territory_code=code,
            admin_username=admin_username,
            admin_password_file=password_file,
            admin_created=created,
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
