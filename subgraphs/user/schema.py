"""The user subgraph's strawberry federation schema: its query, mutation and subscription roots."""

from __future__ import annotations

import uuid
from typing import Any

import strawberry
from strawberry.file_uploads import Upload

from core.errors import BadUserInput, NotFound
from core.graphql import FederationSchema
from core.input_checks import subgraph_extensions
from subgraphs.user import service
from subgraphs.user.avatar_service import delete_avatar, upload_avatar
from subgraphs.user.avatars import MAX_UPLOAD_BYTES
from subgraphs.user.context import Info
from subgraphs.user.pagination import SearchCursor, page_size
from subgraphs.user.search import search_territories, search_text, search_users
from subgraphs.user.service import parse_user_id
from subgraphs.user.subscriptions import Subscription
from subgraphs.user.types import (
    AvatarSize,
    BlockedUser,
    DataExport,
    MessagePolicy,
    PageInfo,
    Profile,
    ProfileVisibility,
    Theme,
    User,
    UserConnection,
    UserEdge,
)
from subgraphs.user.validation import INPUT_RULES


@strawberry.input(description="Absent field: unchanged; explicit null: cleared.")
class UpdateProfileInput:
    about: str | None = strawberry.UNSET
    interests: list[str] | None = strawberry.UNSET
    skills: list[str] | None = strawberry.UNSET
    languages: list[str] | None = strawberry.UNSET
    location: str | None = strawberry.UNSET
    website_url: str | None = strawberry.UNSET
    github_url: str | None = strawberry.UNSET
    linkedin_url: str | None = strawberry.UNSET
    twitter_handle: str | None = strawberry.UNSET
    theme: Theme | None = strawberry.UNSET  # type: ignore[valid-type]
    visibility: ProfileVisibility | None = strawberry.UNSET  # type: ignore[valid-type]
    show_email: bool | None = strawberry.UNSET
    show_real_name: bool | None = strawberry.UNSET
    allow_messages_from: MessagePolicy | None = strawberry.UNSET  # type: ignore[valid-type]

    def sent(self) -> dict[str, Any]:
        """The fields the client sent, by their GraphQL names (None where sent as null)."""
        definition = self.__strawberry_definition__  # type: ignore[attr-defined]
        return {
            field.graphql_name or _camel(field.python_name): getattr(self, field.python_name)
            for field in definition.fields
            if getattr(self, field.python_name) is not strawberry.UNSET
        }


def _camel(name: str) -> str:
    head, *rest = name.split("_")
    return head + "".join(part.title() for part in rest)


@strawberry.type
class Query:
    # NOT_FOUND when the profile is hidden from the viewer or missing.
    @strawberry.field
    async def profile(self, info: Info, user_id: strawberry.ID) -> Profile | None:
        owner = parse_user_id(user_id)
        info.context.optional_viewer()
        view = await info.context.loaders.owners.load(owner)
        if view.profile is None:
            raise NotFound("Profile not found", field="userId")
        return Profile(record=view.profile)

    # Users by username or display name (case- and accent-insensitive), in the viewer's
    # territory unless `territoryCodes` names others; privacy and blocks respected.

    @strawberry.field
    async def search_users(
        self,
        info: Info,
        query: str,
        first: int | None = 20,
        after: str | None = None,
        territory_codes: list[strawberry.ID] | None = None,
    ) -> UserConnection:
        text = search_text(query)
        limit = page_size(first)
        cursor = SearchCursor.decode(after) if after else None
        viewer = info.context.optional_viewer()
        territories = search_territories(
            [str(code) for code in territory_codes or []],
            viewer.territory_code if viewer is not None else None,
        )
        hidden = await info.context.loaders.blocked_with_viewer(
            viewer.territory_code if viewer is not None else None
        )
        page = await search_users(
            info.context.rt.db,
            text,
            territories,
            viewer_id=uuid.UUID(viewer.user_id) if viewer is not None else None,
            hidden=hidden,
            after=cursor,
            limit=limit,
        )
        edges = [
            UserEdge(
                node=User.of(hit.user_id),
                cursor=SearchCursor(key=hit.key, user_id=hit.user_id).encode(),
                followed_at=None,
            )
            for hit in page.hits
        ]
        return UserConnection(
            edges=edges,
            page_info=PageInfo(
                has_next_page=page.has_next_page, end_cursor=edges[-1].cursor if edges else None
            ),
            total_count=page.total_count,
        )

    # The users the viewer blocked, newest first.
    @strawberry.field
    async def blocked_users(self, info: Info) -> list[BlockedUser]:
        viewer = info.context.require_viewer()
        blocks = await service.blocked_users(
            info.context.rt, uuid.UUID(viewer.user_id), viewer.territory_code
        )
        return [BlockedUser.of(block) for block in blocks]


@strawberry.type
class Mutation:
    @strawberry.mutation
    async def update_profile(self, info: Info, input: UpdateProfileInput) -> Profile:
        viewer = info.context.require_viewer()
        record = await service.update_profile(
            info.context.rt, uuid.UUID(viewer.user_id), viewer.territory_code, input.sent()
        )
        return Profile(record=record)

    @strawberry.mutation
    async def reset_profile(self, info: Info) -> Profile:
        viewer = info.context.require_viewer()
        record = await service.reset_profile(
            info.context.rt, uuid.UUID(viewer.user_id), viewer.territory_code
        )
        return Profile(record=record)

    # PNG, JPEG or WebP, at most 5 MB (GraphQL multipart request).
    @strawberry.mutation
    async def upload_avatar(self, info: Info, file: Upload) -> Profile:
        viewer = info.context.require_viewer()
        rt = info.context.rt
        count, window = rt.upload_limit
        await rt.limiter.enforce(f"user:avatar-upload:{viewer.user_id}", count, window)
        data = await _read_upload(file)
        record = await upload_avatar(rt, uuid.UUID(viewer.user_id), viewer.territory_code, data)
        return Profile(record=record)

    @strawberry.mutation
    async def delete_avatar(self, info: Info) -> bool:
        viewer = info.context.require_viewer()
        rt = info.context.rt
        return await delete_avatar(rt, uuid.UUID(viewer.user_id), viewer.territory_code)

    # The followed user; following twice is not an error.
    @strawberry.mutation
    async def follow(self, info: Info, user_id: strawberry.ID) -> User:
        viewer = info.context.require_viewer()
        target = parse_user_id(user_id)
        await service.follow(
            info.context.rt, uuid.UUID(viewer.user_id), viewer.territory_code, target
        )
        return User.of(target)

    @strawberry.mutation
    async def unfollow(self, info: Info, user_id: strawberry.ID) -> bool:
        viewer = info.context.require_viewer()
        target = parse_user_id(user_id)
        return await service.unfollow(
            info.context.rt, uuid.UUID(viewer.user_id), viewer.territory_code, target
        )

    # Blocking again replaces the reason; follows both ways end.
    @strawberry.mutation
    async def block(self, info: Info, user_id: strawberry.ID, reason: str | None = None) -> bool:
        viewer = info.context.require_viewer()
        target = parse_user_id(user_id)
        await service.block(
            info.context.rt, uuid.UUID(viewer.user_id), viewer.territory_code, target, reason
        )
        return True

    @strawberry.mutation
    async def unblock(self, info: Info, user_id: strawberry.ID) -> bool:
        viewer = info.context.require_viewer()
        target = parse_user_id(user_id)
        return await service.unblock(
            info.context.rt, uuid.UUID(viewer.user_id), viewer.territory_code, target
        )


async def _read_upload(file: Any) -> bytes:
    """The upload's bytes; more than 5 MB is refused without reading the rest."""
    read = getattr(file, "read", None)
    if read is None:
        raise BadUserInput("Expected a file upload", field="file")
    data = await read(MAX_UPLOAD_BYTES + 1)
    if isinstance(data, str):
        data = data.encode()
    if len(data) > MAX_UPLOAD_BYTES:
        raise BadUserInput("The image is larger than 5 MB", field="file")
    return bytes(data)


def build_schema() -> FederationSchema:
    return FederationSchema(
        query=Query,
        mutation=Mutation,
        subscription=Subscription,
        types=[User, DataExport, AvatarSize],
        federation_version="2.5",
        extensions=subgraph_extensions(INPUT_RULES),
    )
