"""The typed GraphQL context of one request: runtime, caller, device, loaders."""

from __future__ import annotations

import ipaddress
import uuid
from typing import Any

from strawberry.types import Info as StrawberryInfo

from core.errors import Forbidden
from core.kit.context import ViewerContext, identify
from core.kit.graphql import Connection
from core.kit.repository import ClientInfo
from core.security import Principal, authenticate
from core.security.router_proof import CLIENT_ADDRESS_HEADER, CLIENT_AGENT_HEADER
from subgraphs.auth.loaders import Loaders
from subgraphs.auth.runtime import AuthRuntime

PLATFORM_ADMIN = "platform_admin"
TERRITORY_ADMIN = "territory_admin"


class AuthContext(ViewerContext, kw_only=True):
    rt: AuthRuntime
    client: ClientInfo
    loaders: Loaders

    async def subscriber(self) -> Principal:
        """The caller of a subscription: `Authorization` of the connection_init payload,
        else of the HTTP upgrade request."""
        header = self.subscription_token()
        if header is not None:
            principal = await authenticate(header, self.rt.keyring, self.rt.revocations)
            if principal is not None:
                return principal
        return self.require_viewer()

    @staticmethod
    def viewer_id(viewer: Principal) -> uuid.UUID:
        return uuid.UUID(viewer.user_id)

    async def administers(self, territory_code: str) -> bool:
        """Whether the caller is a territory admin of `territory_code` (or a platform admin)."""
        viewer = self.viewer
        if viewer is None or self.auth_error is not None:
            return False
        roles = await self.loaders.managed_territories.load(self.viewer_id(viewer))
        return (territory_code, TERRITORY_ADMIN) in roles or await self.is_platform_admin()

    async def is_platform_admin(self) -> bool:
        viewer = self.viewer
        if viewer is None or self.auth_error is not None:
            return False
        return await self.loaders.platform_admin.load(self.viewer_id(viewer))

    async def require_platform_admin(self) -> Principal:
        viewer = self.require_viewer()
        if not await self.is_platform_admin():
            raise Forbidden("Platform administrators only")
        return viewer


Info = StrawberryInfo[AuthContext, Any]


IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


def client_info(request: Connection) -> ClientInfo:
    """The client as the router vouches for it: its address (X-Forwarded-For, one IP, set by the
    router) and User-Agent, both covered by the router's proof, which every request here carries
    (core.security.router_gate). Per-IP limits count that address, private or not; without one
    (the router could not tell) they stay off rather than put unknown clients in one bucket."""
    address = _valid_ip(request.headers.get(CLIENT_ADDRESS_HEADER))
    agent = request.headers.get(CLIENT_AGENT_HEADER)
    return ClientInfo(
        ip_address=str(address) if address is not None else None,
        user_agent=agent[:512] if agent else None,
        limit_ip=str(address) if address is not None else None,
    )


def _valid_ip(value: str | None) -> IPAddress | None:
    if not value:
        return None
    try:
        return ipaddress.ip_address(value)
    except ValueError:
        return None


async def build_context(rt: AuthRuntime, request: Connection) -> AuthContext:
    viewer, error = await identify(request.headers.get("authorization"), rt.keyring, rt.revocations)
    return AuthContext(
        rt=rt,
        viewer=viewer,
        auth_error=error,
        client=client_info(request),
        loaders=Loaders(rt),
    )
