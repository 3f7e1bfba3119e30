"""Every service of the platform in one place: what `unityplan serve` runs, what the
development stack starts, which subgraphs the router composes, and what compose.yaml deploys.

Adding a subgraph is its package and one entry in `BUILT_IN`; a subgraph distributed as its
own package instead declares its `Service` as an entry point of the group `unityplan.services`
(see `installed_services`). A service named `x` listens on the setting `X_PORT` (its
`default_port` when unset) and, a subgraph, is found by the router at `X_SUBGRAPH_URL` (see
`core.config.ServiceSettings`). The apps are imported when one is made, not with the registry:
the commands that only read it (`unityplan infra`, alembic) stay quick.
"""

from __future__ import annotations

import re
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from importlib.metadata import entry_points
from typing import Any

from strawberry.schema import BaseSchema

from core.config import Settings
from core.errors import ConfigError
from core.security.jwt import JWKS_PATH

AppFactory = Callable[[Settings], Any]  # an ASGI app
SchemaBuilder = Callable[[], BaseSchema]
Bootstrap = Callable[[Settings], Awaitable[object]]
# The entry point group through which installed packages add services.
ENTRY_POINT_GROUP = "unityplan.services"
# One word: it is the prefix of the service's settings (X_PORT, X_SUBGRAPH_URL).
_NAME = re.compile(r"^[a-z][a-z0-9]*$")


@dataclass(frozen=True)
class Deployment:
    """What a service needs in compose.yaml beyond the common environment and its port."""

    environment: tuple[tuple[str, str], ...] = ()  # (variable, value) beyond the common ones
    volumes: tuple[str, ...] = ()  # `name:/path`: a named volume mounted at a path


@dataclass(frozen=True)
class Service:
    """One service: its name, how its app is made, and what it needs to start."""

    name: str
    create_app: AppFactory
    # Where it listens when its X_PORT is not set.
    default_port: int
    # The servers it cannot start without (DATABASE_URL, NATS_URL, REDIS_URL).
    needs: tuple[str, ...] = ()
    # Subgraphs only: the schema, read in-process without serving it (`unityplan compose`).
    build_schema: SchemaBuilder | None = None
    # Demo data for `unityplan dev`, safe to repeat; what it returns is printed.
    bootstrap: Bootstrap | None = None
    # The subgraph issuing access tokens: the path where it publishes their public keys.
    jwks_path: str | None = None
    deployment: Deployment = field(default_factory=Deployment)

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

    def __post_init__(self) -> None:
        if not _NAME.match(self.name):
            raise ConfigError(f"A service's name is one lower-case word, not {self.name!r}")

    def port(self, settings: Settings) -> int:
        return settings.services.port(self.name, self.default_port)

    def url(self, settings: Settings) -> str:
        """Where the router reaches this subgraph's GraphQL endpoint."""
        return settings.services.subgraph_url(self.name, self.default_port)


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

    return create_app(router_settings(settings), subgraphs=subgraph_urls(settings))


# The subgraphs in this repository, in start order.
BUILT_IN: tuple[Service, ...] = (
    Service(
        "auth",
        _auth_app,
        8001,
        needs=("DATABASE_URL", "REDIS_URL"),
        build_schema=_auth_schema,
        bootstrap=_auth_bootstrap,
        jwks_path=JWKS_PATH,
    ),
    Service(
        "user",
        _user_app,
        8002,
        needs=("DATABASE_URL", "REDIS_URL"),
        build_schema=_user_schema,
        deployment=Deployment(
            environment=(
                ("AVATAR_STORAGE_DIR", "/data/avatars"),
                ("AVATAR_PUBLIC_BASE_URL", "http://localhost:8002"),
            ),
            volumes=("avatar-data:/data/avatars",),
        ),
    ),
)
ROUTER = Service("router", _router_app, 4000)


def installed_services() -> tuple[Service, ...]:
    """The services that installed packages add: each entry point of the group
    `unityplan.services` names a `Service` (`third = "third_subgraph.service:SERVICE"` in the
    package's `[project.entry-points."unityplan.services"]`). Sorted by name, so every process
    starts and composes them in one order."""
    found = []
    for point in sorted(entry_points(group=ENTRY_POINT_GROUP), key=lambda point: point.name):
        service = point.load()
        if not isinstance(service, Service) or service.name != point.name:
            raise ConfigError(
                f"The entry point {point.name} = {point.value} of {ENTRY_POINT_GROUP} "
                f"must name a unityplan.registry.Service named {point.name}"
            )
        found.append(service)
    return tuple(found)


def _all_services() -> tuple[Service, ...]:
    services = (*BUILT_IN, *installed_services())
    names = [service.name for service in services]
    for name in names:
        if names.count(name) > 1 or name == ROUTER.name:
            raise ConfigError(f"Two services are named {name}")
    # The router composes the subgraphs: it starts after them.
    return (*services, ROUTER)


SERVICES: tuple[Service, ...] = _all_services()


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


def router_settings(settings: Settings) -> Settings:
    """`settings` as the router runs with them: ROUTER_JWKS_URL, unless set, is where the
    subgraph issuing access tokens publishes their keys (beside its GraphQL endpoint)."""
    if settings.router.jwks_url:
        return settings
    for entry in subgraphs():
        if entry.jwks_path is not None:
            graphql = settings.router.subgraph_urls.get(entry.name) or entry.url(settings)
            base = graphql.rstrip("/").removesuffix("/graphql")
            return settings.replace(ROUTER_JWKS_URL=base + entry.jwks_path)
    return settings
