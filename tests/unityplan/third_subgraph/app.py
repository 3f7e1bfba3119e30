"""The third subgraph's app: the kit's wiring, its schema, and the caller read from the
router's request like every subgraph's."""

from __future__ import annotations

from litestar import Litestar

from core.config import Settings
from core.kit.app import SubgraphClients, create_subgraph_app
from core.kit.context import ViewerContext, identify
from core.kit.graphql import Connection
from core.security import KeyRing, SessionRegistry
from tests.unityplan.third_subgraph.schema import build_schema

SERVICE_NAME = "third"


def create_app(settings: Settings) -> Litestar:
    clients = SubgraphClients.open(settings)
    keyring = KeyRing.from_settings(settings)
    revocations = SessionRegistry.from_settings(clients.redis, settings)

    async def context_getter(request: Connection) -> ViewerContext:
        viewer, error = await identify(request.headers.get("authorization"), keyring, revocations)
        return ViewerContext(viewer=viewer, auth_error=error)

    return create_subgraph_app(
        SERVICE_NAME, clients, schema=build_schema(), context_getter=context_getter
    )
