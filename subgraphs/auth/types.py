"""GraphQL types of the auth subgraph: the `User` and `Territory` entities and their companions.

Field privacy: `email` and `fullName` need the owner's `showEmail` / `showRealName`, which the
user subgraph owns (inaccessible in the API). They are declared `@external` here and the fields
`@requires` them, so the router fetches the flag from the user subgraph and hands it over in the
entity representation. The owner and the admins of the owner's territory always see them; a
representation without the flag means hidden.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from enum import Enum
from typing import Any

import strawberry
from strawberry.federation.schema_directives import External, Inaccessible, Requires, Shareable
from strawberry.federation.types import FieldSet
from strawberry.scalars import JSON

from core.db import Territory as TerritoryRecord
from core.errors import BadUserInput, NotFound
from core.security.secret_box import SecretBox
from subgraphs.auth.context import Info
from subgraphs.auth.loaders import InvitationUseKey
from subgraphs.auth.models import InvitationToken
from subgraphs.auth.models import Session as SessionRow
from subgraphs.auth.runtime import Account, utcnow
from subgraphs.auth.tokens import invitation_token_in_clear


@strawberry.enum
class TerritoryType(Enum):
    COUNTRY = "country"
    FIRST_NATION = "first_nation"
    COMMUNITY = "community"


@strawberry.enum
class InvitationType(Enum):
    SINGLE_USE = "single_use"
    GROUP = "group"


def parse_uuid(value: str, field: str) -> uuid.UUID:
    try:
        return uuid.UUID(str(value))
    except ValueError as exc:
        raise BadUserInput("Not a valid id", field=field) from exc


@strawberry.federation.type(keys=["code"])
class Territory:
    code: strawberry.ID
    name: str
    type: TerritoryType
    timezone: str | None
    locale: str | None
    default_language: str | None
    is_active: bool
    parent_code: strawberry.Private[str | None]

    @classmethod
    def of(cls, record: TerritoryRecord) -> Territory:
        return cls(
            code=strawberry.ID(record.code),
            name=record.name,
            type=TerritoryType(record.type.value),
            timezone=record.timezone,
            locale=record.locale,
            default_language=record.default_language,
            is_active=record.is_active,
            parent_code=record.parent_code,
        )

    @classmethod
    async def resolve_reference(cls, info: Info, code: strawberry.ID, **_: Any) -> Territory | None:
        try:
            return cls.of(await info.context.rt.db.territory(str(code)))
        except (NotFound, BadUserInput):
            return None

    @strawberry.field
    async def parent(self, info: Info) -> Territory | None:
        if self.parent_code is None:
            return None
        return await Territory.resolve_reference(info, strawberry.ID(self.parent_code))

    @strawberry.field
    async def children(self, info: Info) -> list[Territory]:
        territories = await info.context.rt.db.territories()
        return [Territory.of(t) for t in territories if t.parent_code == self.code]


@strawberry.federation.type(keys=["id"])
class User:
    id: strawberry.ID
    account: strawberry.Private[Account]
    shown_email: strawberry.Private[bool | None] = None
    shown_real_name: strawberry.Private[bool | None] = None

    @classmethod
    def of(
        cls,
        account: Account,
        *,
        show_email: bool | None = None,
        show_real_name: bool | None = None,
    ) -> User:
        return cls(
            id=strawberry.ID(str(account.id)),
            account=account,
            shown_email=show_email,
            shown_real_name=show_real_name,
        )

    @classmethod
    async def resolve_reference(
        cls,
        info: Info,
        id: strawberry.ID,
        showEmail: bool | None = None,
        showRealName: bool | None = None,
        **_: Any,
    ) -> User | None:
        try:
            user_id = uuid.UUID(str(id))
        except ValueError:
            return None
        account = await info.context.loaders.accounts.load(user_id)
        if account is None:
            return None
        return cls.of(account, show_email=showEmail, show_real_name=showRealName)

    @strawberry.field(directives=[External(), Inaccessible()])  # type: ignore[untyped-decorator]
    def show_email(self) -> bool:
        return bool(self.shown_email)

    @strawberry.field(directives=[External(), Inaccessible()])  # type: ignore[untyped-decorator]
    def show_real_name(self) -> bool:
        return bool(self.shown_real_name)

    # Shareable: the user subgraph provides it with the events it streams (`userUpdated`).
    @strawberry.field(directives=[Shareable()])  # type: ignore[untyped-decorator]
    def username(self) -> str:
        return self.account.username

    @strawberry.field
    def federated_address(self) -> str:
        return self.account.federated_address

    @strawberry.field
    def display_name(self) -> str | None:
        return self.account.display_name

    @strawberry.field(directives=[Shareable()])  # type: ignore[untyped-decorator]
    def avatar_url(self) -> str | None:
        return self.account.avatar_url

    @strawberry.field
    def is_verified(self) -> bool:
        return self.account.is_verified

    @strawberry.field
    def created_at(self) -> datetime:
        return self.account.created_at

    @strawberry.field
    async def territory(self, info: Info) -> Territory:
        return Territory.of(await info.context.rt.db.territory(self.account.territory_code))

    async def _sees_private(self, info: Info) -> bool:
        viewer = info.context.viewer
        if viewer is None or info.context.auth_error is not None:
            return False
        if viewer.user_id == str(self.account.id):
            return True
        return await info.context.administers(self.account.territory_code)

    @strawberry.field(directives=[Requires(fields=FieldSet("showEmail"))])  # type: ignore[untyped-decorator]
    async def email(self, info: Info) -> str | None:
        if self.shown_email or await self._sees_private(info):
            return self.account.email
        return None

    @strawberry.field(directives=[Requires(fields=FieldSet("showRealName"))])  # type: ignore[untyped-decorator]
    async def full_name(self, info: Info) -> str | None:
        if self.shown_real_name or await self._sees_private(info):
            return self.account.full_name
        return None

    @strawberry.field
    async def last_login_at(self, info: Info) -> datetime | None:
        return self.account.last_login_at if await self._sees_private(info) else None

    @strawberry.field
    async def mfa_enabled(self, info: Info) -> bool:
        return self.account.mfa_enabled and await self._sees_private(info)


@strawberry.type
class AuthPayload:
    user: User
    access_token: str
    refresh_token: str
    expires_in: int
    token_type: str = "Bearer"  # noqa: S105 - the OAuth token type, not a secret


@strawberry.type
class Session:
    id: strawberry.ID
    created_at: datetime
    last_used_at: datetime | None
    expires_at: datetime
    user_agent: str | None
    ip_address: str | None
    current: bool

    @classmethod
    def from_event(cls, data: dict[str, Any], *, current_id: str | None) -> Session:
        """The ended session as the `session.revoked` event describes it."""

        def moment(name: str) -> datetime | None:
            value = data.get(name)
            return datetime.fromisoformat(value) if isinstance(value, str) else None

        return cls(
            id=strawberry.ID(str(data["sessionId"])),
            created_at=moment("createdAt") or utcnow(),
            last_used_at=moment("lastUsedAt"),
            expires_at=moment("expiresAt") or utcnow(),
            user_agent=data.get("userAgent"),
            ip_address=data.get("ipAddress"),
            current=str(data["sessionId"]) == current_id,
        )

    @classmethod
    def of(cls, row: SessionRow, *, current_id: str | None) -> Session:
        return cls(
            id=strawberry.ID(str(row.id)),
            created_at=row.created_at,
            last_used_at=row.last_used_at,
            expires_at=row.expires_at,
            user_agent=row.user_agent,
            ip_address=str(row.ip_address) if row.ip_address is not None else None,
            current=str(row.id) == current_id,
        )


@strawberry.type
class InvitationUse:
    user_id: strawberry.Private[uuid.UUID]
    used_at: datetime

    @strawberry.field
    async def user(self, info: Info) -> User:
        account = await info.context.loaders.accounts.load(self.user_id)
        if account is None:  # deactivated since; erased accounts take their uses with them
            raise NotFound("User not found")
        return User.of(account)


@strawberry.type
class Invitation:
    id: strawberry.ID
    token: str
    type: InvitationType
    email: str | None
    max_uses: int
    current_uses: int
    expires_at: datetime
    is_active: bool
    created_at: datetime
    territory_code: strawberry.Private[str]

    @classmethod
    def of(cls, row: InvitationToken, territory_code: str, box: SecretBox) -> Invitation:
        return cls(
            id=strawberry.ID(str(row.id)),
            token=invitation_token_in_clear(box, row.id, row.token),
            type=InvitationType(row.token_type),
            email=row.invited_email,
            max_uses=row.max_uses,
            current_uses=row.current_uses,
            expires_at=row.expires_at,
            is_active=row.is_active and row.expires_at > utcnow(),
            created_at=row.created_at,
            territory_code=territory_code,
        )

    @strawberry.field
    def remaining_uses(self) -> int:
        return max(0, self.max_uses - self.current_uses)

    @strawberry.field
    async def uses(self, info: Info) -> list[InvitationUse]:
        key = InvitationUseKey(self.territory_code, uuid.UUID(str(self.id)))
        rows = await info.context.loaders.invitation_uses.load(key)
        return [
            InvitationUse(user_id=row.used_by_user_id, used_at=row.used_at)
            for row in rows
            if row.used_by_user_id is not None
        ]


@strawberry.type
class InvitationValidation:
    valid: bool
    reason: str | None = None
    type: InvitationType | None = None
    email: str | None = None
    expires_at: datetime | None = None
    remaining_uses: int | None = None


@strawberry.type
class TotpEnrollment:
    secret: str
    otpauth_uri: str


@strawberry.federation.type(keys=["userId"])
class DataExport:
    user_id: strawberry.ID
    generated_at: datetime
    account: JSON


@strawberry.input
class RegisterInput:
    territory_code: strawberry.ID
    invitation_token: str
    username: str
    password: str
    email: str | None = None
    full_name: str | None = None
    display_name: str | None = None


@strawberry.input
class LoginInput:
    username: str
    password: str
    territory_code: strawberry.ID | None = None
    totp_code: str | None = None


@strawberry.input
class CreateInvitationInput:
    type: InvitationType
    email: str | None = None
    max_uses: int | None = None
    expires_in_days: int | None = 30
    # Default: the caller's own territory; another one for platform admins and its admins.
    territory_code: strawberry.ID | None = None


@strawberry.input
class CreateTerritoryInput:
    code: strawberry.ID
    name: str
    type: TerritoryType
    parent_code: strawberry.ID | None = None
    pod_id: str | None = None
    timezone: str | None = None
    locale: str | None = None
    default_language: str | None = None
