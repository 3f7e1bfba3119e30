"""What every auth use case works with: the shared clients, the caller's device, account views."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import UTC, datetime

from redis.asyncio import Redis

from core.cache import TerritoryCache
from core.config import Settings
from core.db import Database
from core.events.live import LiveFeed
from core.ratelimit import AttemptGuard, LockoutPolicy, SlidingWindowLimiter
from core.security import KeyRing, PasswordHasher, SessionRegistry
from core.security.secret_box import SecretBox
from subgraphs.auth.mailer import MailQueue, create_mailer
from subgraphs.auth.models import User

EVENT_SOURCE = "unityplan/auth"


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class Account:
    """A user's account as the API shows it (before field privacy is applied)."""

    id: uuid.UUID
    username: str
    territory_code: str
    email: str | None
    full_name: str | None
    display_name: str | None
    avatar_url: str | None
    is_verified: bool
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None
    mfa_enabled: bool

    @classmethod
    def of(cls, user: User, territory_code: str, *, mfa_enabled: bool) -> Account:
        return cls(
            id=user.id,
            username=user.username,
            territory_code=territory_code,
            email=user.email,
            full_name=user.full_name,
            display_name=user.display_name,
            avatar_url=user.avatar_url,
            is_verified=user.is_verified,
            is_active=user.is_active,
            created_at=user.created_at,
            last_login_at=user.last_login_at,
            mfa_enabled=mfa_enabled,
        )

    @property
    def federated_address(self) -> str:
        return f"{self.username}@{self.territory_code}"


@dataclass(frozen=True)
class Guards:
    """Brute-force guards: failures per account and per client IP, per kind of attempt."""

    login: AttemptGuard
    totp: AttemptGuard
    account_tokens: AttemptGuard  # resetPassword, verifyEmail
    requests: SlidingWindowLimiter  # requestPasswordReset, validateInvitation, ...


@dataclass(frozen=True)
class AuthRuntime:
    """The long-lived clients of one auth service process."""

    settings: Settings
    db: Database
    redis: Redis
    keyring: KeyRing
    revocations: SessionRegistry
    hasher: PasswordHasher
    guards: Guards
    mail: MailQueue
    cache: TerritoryCache
    feed: LiveFeed
    # Seals the secrets stored to be read back (TOTP), DATA_ENCRYPTION_KEYS.
    secret_box: SecretBox

    @classmethod
    def create(cls, settings: Settings, db: Database, redis: Redis) -> AuthRuntime:
        auth = settings.auth
        prefix = settings.redis.key_prefix
        # The first lock-out lasts one window, each further one twice the last (ASVS 2.2.1).
        window = auth.login_failure_window_seconds
        per_account = LockoutPolicy(
            limit=auth.login_failures_per_account,
            window_seconds=window,
            backoff_base_seconds=window,
        )
        per_ip = LockoutPolicy(
            limit=auth.login_failures_per_ip,
            window_seconds=window,
            hourly_limit=max(100, auth.login_failures_per_ip),
            backoff_base_seconds=window,
        )
        policies = {"account": per_account, "ip": per_ip}
        return cls(
            settings=settings,
            db=db,
            redis=redis,
            keyring=KeyRing.from_settings(settings),
            revocations=SessionRegistry.from_settings(redis, settings),
            hasher=PasswordHasher.from_settings(settings.security),
            guards=Guards(
                login=AttemptGuard(redis, scope="login", policies=policies, key_prefix=prefix),
                totp=AttemptGuard(redis, scope="totp", policies=policies, key_prefix=prefix),
                account_tokens=AttemptGuard(
                    redis, scope="account-token", policies={"ip": per_ip}, key_prefix=prefix
                ),
                requests=SlidingWindowLimiter(redis, prefix),
            ),
            mail=MailQueue(create_mailer(auth.smtp_url, auth.mail_from, settings.devstack.dir)),
            cache=TerritoryCache.from_settings(redis, settings.redis),
            feed=LiveFeed(settings.nats, "auth-subscriptions"),
            secret_box=SecretBox.from_settings(settings),
        )
