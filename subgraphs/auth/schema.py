"""The auth subgraph's federation schema: queries, mutations, entities.

Resolvers are the edge: they read the caller from the context, check authorization here (the
router is not trusted to have done it), and hand plain values to the services.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import AsyncGenerator
from contextlib import aclosing
from typing import cast

import strawberry
from strawberry.scalars import JSON

from core.db.territories import validate_territory_code
from core.errors import Forbidden, NotFound
from core.events import realtime_user_subject, territory_subject
from core.graphql import FederationSchema
from core.input_checks import subgraph_extensions
from core.security import Principal
from subgraphs.auth.context import Info
from subgraphs.auth.loaders import load_accounts
from subgraphs.auth.repository import GlobalRepository
from subgraphs.auth.runtime import Account
from subgraphs.auth.service import account as account_service
from subgraphs.auth.service import invitations as invitation_service
from subgraphs.auth.service import login as login_service
from subgraphs.auth.service import recovery, registration, territories
from subgraphs.auth.service.export import export_account
from subgraphs.auth.types import (
    AuthPayload,
    CreateInvitationInput,
    CreateTerritoryInput,
    DataExport,
    Invitation,
    InvitationType,
    InvitationValidation,
    LoginInput,
    RegisterInput,
    Session,
    Territory,
    TerritoryType,
    TotpEnrollment,
    User,
    parse_uuid,
)
from subgraphs.auth.validation import INPUT_RULES


def _payload(account: Account, access: str, refresh: str, expires_in: int) -> AuthPayload:
    return AuthPayload(
        user=User.of(account), access_token=access, refresh_token=refresh, expires_in=expires_in
    )


async def _invitation_territory(
    info: Info, viewer: Principal, territory_code: strawberry.ID | None
) -> str:
    """The territory an invitation operation is about: the viewer's own by default; another
    only for platform admins and that territory's admins."""
    if territory_code is None or str(territory_code) == viewer.territory_code:
        return viewer.territory_code
    code = validate_territory_code(str(territory_code))
    if not await info.context.administers(code):
        raise Forbidden(
            "Only platform admins and the territory's admins invite into another territory",
            field="territoryCode",
        )
    return code


@strawberry.type
class Query:
    @strawberry.field
    async def me(self, info: Info) -> User | None:
        viewer = info.context.optional_viewer()
        if viewer is None:
            return None
        account = await info.context.loaders.accounts.load(uuid.UUID(viewer.user_id))
        return User.of(account) if account is not None else None

    @strawberry.field
    async def user(self, info: Info, id: strawberry.ID) -> User | None:
        info.context.optional_viewer()
        return await User.resolve_reference(info, id)

    @strawberry.field
    async def user_by_username(self, info: Info, username: str) -> User | None:
        info.context.optional_viewer()
        async with info.context.rt.db.global_session() as session:
            identity = await GlobalRepository(session).identity_by_username(username)
        if identity is None:
            return None
        return await User.resolve_reference(info, strawberry.ID(str(identity.id)))

    @strawberry.field
    async def territories(self, info: Info, type: TerritoryType | None = None) -> list[Territory]:
        found = await info.context.rt.db.territories()
        return [Territory.of(t) for t in found if type is None or t.type.value == type.value]

    @strawberry.field
    async def territory(self, info: Info, code: strawberry.ID) -> Territory | None:
        return await Territory.resolve_reference(info, code)

    @strawberry.field
    async def validate_invitation(
        self, info: Info, token: str, territory_code: strawberry.ID, email: str | None = None
    ) -> InvitationValidation:
        check = await invitation_service.validate(
            info.context.rt,
            token=token,
            territory_code=str(territory_code),
            email=email,
            client=info.context.client,
        )
        if check.reason is not None or check.invitation is None:
            return InvitationValidation(
                valid=False, reason=check.reason.value if check.reason else None
            )
        invitation = check.invitation
        return InvitationValidation(
            valid=True,
            type=InvitationType(invitation.token_type),
            email=invitation.invited_email,
            expires_at=invitation.expires_at,
            remaining_uses=invitation.max_uses - invitation.current_uses,
        )

    @strawberry.field
    async def my_invitations(
        self, info: Info, territory_code: strawberry.ID | None = None
    ) -> list[Invitation]:
        viewer = info.context.require_viewer()
        code = await _invitation_territory(info, viewer, territory_code)
        rows = await account_service.my_invitations(info.context.rt, viewer, code)
        return [Invitation.of(row, code, info.context.rt.secret_box) for row in rows]

    @strawberry.field
    async def my_sessions(self, info: Info) -> list[Session]:
        viewer = info.context.require_viewer()
        rows = await account_service.my_sessions(info.context.rt, viewer)
        return [Session.of(row, current_id=viewer.session_id) for row in rows]

    @strawberry.field
    def jwks(self, info: Info) -> str:
        return json.dumps(info.context.rt.keyring.jwks())

    @strawberry.field
    async def export_my_data(self, info: Info) -> DataExport:
        viewer = info.context.require_viewer()
        exported = await export_account(info.context.rt, viewer)
        return DataExport(
            user_id=strawberry.ID(viewer.user_id),
            generated_at=exported.generated_at,
            account=cast("JSON", exported.account),
        )


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def register(self, info: Info, input: RegisterInput) -> AuthPayload:
        registered = await registration.register(
            info.context.rt,
            registration.Registration(
                territory_code=str(input.territory_code),
                invitation_token=input.invitation_token,
                username=input.username,
                password=input.password,
                email=input.email,
                full_name=input.full_name,
                display_name=input.display_name,
            ),
            info.context.client,
        )
        tokens = registered.tokens
        return _payload(
            registered.account, tokens.access_token, tokens.refresh_token, tokens.expires_in
        )

    @strawberry.mutation
    async def login(self, info: Info, input: LoginInput) -> AuthPayload:
        signed_in = await login_service.login(
            info.context.rt,
            username=input.username,
            password=input.password,
            territory_code=str(input.territory_code) if input.territory_code else None,
            totp_code=input.totp_code,
            client=info.context.client,
        )
        tokens = signed_in.tokens
        return _payload(
            signed_in.account, tokens.access_token, tokens.refresh_token, tokens.expires_in
        )

    @strawberry.mutation
    async def refresh_token(self, info: Info, refresh_token: str) -> AuthPayload:
        signed_in = await login_service.refresh(info.context.rt, refresh_token, info.context.client)
        tokens = signed_in.tokens
        return _payload(
            signed_in.account, tokens.access_token, tokens.refresh_token, tokens.expires_in
        )

    @strawberry.mutation
    async def logout(self, info: Info, refresh_token: str) -> bool:
        await login_service.logout(info.context.rt, refresh_token, info.context.client)
        return True

    @strawberry.mutation
    async def logout_all(self, info: Info) -> int:
        viewer = info.context.require_viewer()
        return await account_service.logout_all(info.context.rt, viewer, info.context.client)

    @strawberry.mutation
    async def revoke_session(self, info: Info, id: strawberry.ID) -> bool:
        viewer = info.context.require_viewer()
        session_id = parse_uuid(id, "id")
        await account_service.revoke_session(
            info.context.rt, viewer, session_id, info.context.client
        )
        return True

    @strawberry.mutation
    async def change_password(self, info: Info, current_password: str, new_password: str) -> bool:
        viewer = info.context.require_viewer()
        await account_service.change_password(
            info.context.rt, viewer, current_password, new_password, info.context.client
        )
        return True

    @strawberry.mutation
    async def request_password_reset(self, info: Info, username: str) -> bool:
        await recovery.request_password_reset(info.context.rt, username, info.context.client)
        return True

    @strawberry.mutation
    async def reset_password(self, info: Info, token: str, new_password: str) -> bool:
        await recovery.reset_password(info.context.rt, token, new_password, info.context.client)
        return True

    @strawberry.mutation
    async def request_email_verification(self, info: Info) -> bool:
        viewer = info.context.require_viewer()
        await recovery.request_email_verification(info.context.rt, viewer, info.context.client)
        return True

    @strawberry.mutation
    async def verify_email(self, info: Info, token: str) -> User:
        user_id = await recovery.verify_email(info.context.rt, token, info.context.client)
        info.context.loaders.accounts.clear_all()  # the cached account may predate the change
        account = await info.context.loaders.accounts.load(user_id)
        if account is None:
            raise NotFound("User not found")
        return User.of(account)

    @strawberry.mutation
    async def enroll_totp(self, info: Info) -> TotpEnrollment:
        viewer = info.context.require_viewer()
        enrollment = await account_service.enroll_totp(info.context.rt, viewer)
        return TotpEnrollment(secret=enrollment.secret, otpauth_uri=enrollment.otpauth_uri)

    @strawberry.mutation
    async def confirm_totp(self, info: Info, code: str) -> list[str]:
        viewer = info.context.require_viewer()
        return await account_service.confirm_totp(
            info.context.rt, viewer, code, info.context.client
        )

    @strawberry.mutation
    async def disable_totp(self, info: Info, code: str) -> bool:
        viewer = info.context.require_viewer()
        await account_service.disable_totp(info.context.rt, viewer, code, info.context.client)
        return True

    @strawberry.mutation
    async def create_invitation(self, info: Info, input: CreateInvitationInput) -> Invitation:
        viewer = info.context.require_viewer()
        code = await _invitation_territory(info, viewer, input.territory_code)
        row = await account_service.create_invitation(
            info.context.rt,
            viewer,
            territory_code=code,
            token_type=input.type.value,
            email=input.email,
            max_uses=input.max_uses,
            expires_in_days=input.expires_in_days,
            client=info.context.client,
        )
        return Invitation.of(row, code, info.context.rt.secret_box)

    @strawberry.mutation
    async def revoke_invitation(
        self, info: Info, id: strawberry.ID, territory_code: strawberry.ID | None = None
    ) -> bool:
        viewer = info.context.require_viewer()
        invitation_id = parse_uuid(id, "id")
        code = await _invitation_territory(info, viewer, territory_code)
        await account_service.revoke_invitation(
            info.context.rt, viewer, invitation_id, info.context.client, code
        )
        return True

    @strawberry.mutation
    async def create_territory(self, info: Info, input: CreateTerritoryInput) -> Territory:
        viewer = await info.context.require_platform_admin()
        record = await territories.create_territory(
            info.context.rt,
            viewer,
            territories.NewTerritory(
                code=str(input.code),
                name=input.name,
                type=input.type.value,
                parent_code=str(input.parent_code) if input.parent_code else None,
                pod_id=input.pod_id,
                timezone=input.timezone,
                locale=input.locale,
                default_language=input.default_language,
            ),
            info.context.client,
        )
        return Territory.of(record)

    @strawberry.mutation
    async def grant_territory_role(
        self, info: Info, user_id: strawberry.ID, territory_code: strawberry.ID, role: str
    ) -> bool:
        viewer = info.context.require_viewer()
        code = str(territory_code)
        if not await info.context.administers(code):
            raise territories.forbidden_grant()
        await territories.grant_territory_role(
            info.context.rt,
            viewer,
            parse_uuid(user_id, "userId"),
            code,
            role,
            info.context.client,
        )
        return True

    @strawberry.mutation
    async def delete_my_account(self, info: Info, password: str) -> bool:
        viewer = info.context.require_viewer()
        await recovery.delete_account(info.context.rt, viewer, password, info.context.client)
        return True


@strawberry.type
class Subscription:
    @strawberry.subscription
    async def session_revoked(self, info: Info) -> AsyncGenerator[Session, None]:
        """One of the caller's sessions ended (logout elsewhere, reuse, password change)."""
        viewer = await info.context.subscriber()
        # The viewer's own realtime subject: no other user's revocations reach this process.
        subject = realtime_user_subject(viewer.user_id, "session", "revoked")
        # `aclosing`: when the client goes away, the NATS subscription ends right then.
        async with aclosing(info.context.rt.feed.events(subject)) as events:
            async for event in events:
                data = event.data if isinstance(event.data, dict) else {}
                if data.get("userId") == viewer.user_id:
                    yield Session.from_event(data, current_id=viewer.session_id)

    @strawberry.subscription
    async def territory_member_joined(
        self, info: Info, territory_code: strawberry.ID
    ) -> AsyncGenerator[User, None]:
        """Someone registered in the territory (signed-in callers only)."""
        await info.context.subscriber()
        code = (await info.context.rt.db.territory(str(territory_code))).code
        subject = territory_subject(code, "user", "registered")
        async with aclosing(info.context.rt.feed.events(subject)) as events:
            async for event in events:
                data = event.data if isinstance(event.data, dict) else {}
                user_id = data.get("userId")
                if not isinstance(user_id, str):
                    continue
                [account] = await load_accounts(info.context.rt, [uuid.UUID(user_id)])
                if account is not None:
                    yield User.of(account)


schema = FederationSchema(
    query=Query,
    mutation=Mutation,
    subscription=Subscription,
    types=[User, Territory, DataExport],
    federation_version="2.5",
    extensions=subgraph_extensions(INPUT_RULES),
)
