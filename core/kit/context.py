"""The GraphQL context every subgraph's resolvers get: who is asking (or why that is not
known), read from the request the router signed, and the helpers resolvers ask it with."""

from __future__ import annotations

from typing import Any

from redis.exceptions import RedisError
from strawberry.litestar import BaseContext

from core.errors import SIGN_IN_UNAVAILABLE, ServiceUnavailable, Unauthenticated, UnityPlanError
from core.security import KeyRing, Principal, SessionRegistry, authenticate


class ViewerContext(BaseContext, kw_only=True):
    """The caller of one request; a subgraph's context adds its runtime and loaders."""

    viewer: Principal | None
    # Why the presented token was refused; raised by every resolver that reads the caller, so
    # a stale token never silently reads as "signed out" (public operations still work).
    auth_error: UnityPlanError | None
    # The `connection_init` payload of a WebSocket (strawberry fills it in).
    connection_params: dict[str, Any] | None = None

    def require_viewer(self) -> Principal:
        """The caller; Unauthenticated (or why the token was refused) when there is none."""
        if self.auth_error is not None:
            raise self.auth_error
        if self.viewer is None:
            raise Unauthenticated()
        return self.viewer

    def optional_viewer(self) -> Principal | None:
        """The caller, None when anonymous; why the token was refused, if it was."""
        if self.auth_error is not None:
            raise self.auth_error
        return self.viewer

    def subscription_token(self) -> str | None:
        """The `Authorization` of the WebSocket's `connection_init` payload, if it has one."""
        params = self.connection_params or {}
        header = params.get("Authorization") or params.get("authorization")
        return header if isinstance(header, str) else None


async def identify(
    authorization: str | None, keyring: KeyRing, revocations: SessionRegistry
) -> tuple[Principal | None, UnityPlanError | None]:
    """The caller of a request with header `authorization`, or why its token was refused."""
    try:
        return await authenticate(authorization, keyring, revocations), None
    except Unauthenticated as exc:
        return None, exc
    except RedisError:  # fail closed: the caller is not known until the registry answers
        return None, ServiceUnavailable(SIGN_IN_UNAVAILABLE)
