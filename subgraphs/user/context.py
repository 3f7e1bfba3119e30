"""The typed GraphQL context of one request: the subgraph's runtime, the caller, the loaders."""

from __future__ import annotations

import uuid
from typing import Any

from strawberry.types import Info as StrawberryInfo

from core.kit.context import ViewerContext, identify
from core.kit.graphql import Connection
from core.security import Principal, authenticate
from subgraphs.user.loaders import Loaders
from subgraphs.user.runtime import UserRuntime


class UserContext(ViewerContext, kw_only=True):
    rt: UserRuntime
    loaders: Loaders

    async def subscriber(self) -> Principal | None:
        """The caller of a subscription: `Authorization` of the connection_init payload, else
        of the HTTP upgrade request; None when anonymous."""
        header = self.subscription_token()
        if header is not None:
            return await authenticate(header, self.rt.keyring, self.rt.revocations)
        return self.optional_viewer()

    def viewer_id(self) -> uuid.UUID | None:
        viewer = self.optional_viewer()
        return uuid.UUID(viewer.user_id) if viewer is not None else None


Info = StrawberryInfo[UserContext, Any]


async def build_context(rt: UserRuntime, request: Connection) -> UserContext:
    viewer, error = await identify(request.headers.get("authorization"), rt.keyring, rt.revocations)
    viewer_id = uuid.UUID(viewer.user_id) if viewer is not None else None
    return UserContext(
        rt=rt, viewer=viewer, auth_error=error, loaders=Loaders(rt.db, rt.directory, viewer_id)
    )
