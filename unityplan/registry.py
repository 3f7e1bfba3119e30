"""Every service of the platform in one place: what `unityplan serve` runs, what the
development stack starts, which subgraphs the router composes, and what compose.yaml deploys.

Adding a subgraph is its package and one entry in `SERVICES`. A service named `x` is placed by
the setting `X_PORT` and, for a subgraph, found by the router at `X_SUBGRAPH_URL` (see
`core.config.ServiceSettings`). The apps are imported when one is made, not with the registry:
the commands that only read it (`unityplan infra`, alembic) stay quick.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from strawberry.schema import BaseSchema

from core.config import Settings
from core.errors import ConfigError

AppFactory = Callable[[Settings], Any]  # an ASGI app
SchemaBuilder = Callable[[], BaseSchema]
Bootstrap = Callable[[Settings], Awaitable[object]]


@dataclass(frozen=True)
class Service:
    """One service: its name, how its app is made, and what it needs to start."""

    name: str
    create_app: AppFactory
    # The servers it cannot start without (DATABASE_URL, NATS_URL, REDIS_URL).
    needs: tuple[str, ...] = ()
    # Subgraphs only: the schema, read in-process without serving it (`unityplan compose`).
    build_schema: SchemaBuilder | None = None
    # Demo data for `unityplan dev`, safe to repeat; what it returns is printed.
    bootstrap: Bootstrap | None = None

    @property
    def is_subgraph(self) -> bool:
        return self.build_schema is not None

    @property
    def port_variable(self) -> str:
        return f"{self.name.upper()}_PORT"

    @property
    def url_variable(self) -> str:
        return f"{self.name.upper()}_SUBGRAPH_URL"

    def schema(self) -> BaseSchema:
        """The subgraph's schema (ConfigError for the router)."""
        if self.build_schema is None:
            raise ConfigError(f"The {self.name} service is not a subgraph: it has no schema")
        return self.build_schema()

    def port(self, settings: Settings) -> int:
        return settings.services.port(self.name)

    def url(self, settings: Settings) -> str:
        """Where the router reaches this subgraph's GraphQL endpoint."""
        return settings.services.subgraph_url(self.name)


def _auth_app(settings: Settings) -> Any:
    from subgraphs.auth.app import create_app

    return create_app(settings)


def _auth_schema() -> BaseSchema:
    from subgraphs.auth.schema import schema

    return schema


async def _auth_bootstrap(settings: Settings) -> object:
    from subgraphs.auth.bootstrap import bootstrap_demo

    return await bootstrap_demo(settings)


def _user_app(settings: Settings) -> Any:
    from subgraphs.user.app import create_app

    return create_app(settings)


def _user_schema() -> BaseSchema:
    from subgraphs.user.schema import build_schema

    return build_schema()


def _router_app(settings: Settings) -> Any:
    from router.server.app import create_app

    return create_app(settings, subgraphs=subgraph_urls(settings))


SERVICES: tuple[Service, ...] = (
    Service(
        "auth",
        _auth_app,
        needs=("DATABASE_URL", "REDIS_URL"),
        build_schema=_auth_schema,
        bootstrap=_auth_bootstrap,
    ),
    Service("user", _user_app, needs=("DATABASE_URL", "REDIS_URL"), build_schema=_user_schema),
    # The router composes the subgraphs: it starts after them.
    Service("router", _router_app),
)


def registered(name: str) -> Service:
    """The registered service `name` (KeyError otherwise)."""
    for entry in SERVICES:
        if entry.name == name:
            return entry
    raise KeyError(name)


def subgraphs() -> list[Service]:
    """The subgraphs, in start order."""
    return [entry for entry in SERVICES if entry.is_subgraph]


def subgraph_urls(settings: Settings) -> dict[str, str]:
    """Each subgraph's name and the URL the router reaches it at."""
    return {entry.name: entry.url(settings) for entry in subgraphs()}
