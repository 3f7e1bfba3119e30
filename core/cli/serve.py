"""`unityplan serve <service>`: run one service (auth, user or router) under uvicorn."""

from __future__ import annotations

import importlib
from typing import Any

import click

from core.config import get_settings

# Each service module exposes `create_app(settings) -> ASGI app`.
SERVICES: dict[str, str] = {
    "auth": "subgraphs.auth.app",
    "user": "subgraphs.user.app",
    "router": "router.server.app",
}


def available_services() -> list[str]:
    """The services whose app module can be imported in this checkout."""
    found = []
    for name, module in SERVICES.items():
        try:
            importlib.import_module(module)
        except ModuleNotFoundError:
            continue
        found.append(name)
    return found


@click.command()
@click.argument("service", type=click.Choice(sorted(SERVICES)))
@click.option("--host", default=None, help="Interface to bind (default SERVICE_HOST).")
@click.option(
    "--port", type=int, default=None, help="Port (default AUTH_PORT/USER_PORT/ROUTER_PORT)."
)
@click.option(
    "--supergraph",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Router only: serve this supergraph SDL file (hot-reloaded) instead of composing.",
)
def serve(service: str, host: str | None, port: int | None, supergraph: str | None) -> None:
    """Run SERVICE until interrupted."""
    import uvicorn

    overrides: dict[str, Any] = {}
    if supergraph:
        if service != "router":
            raise click.UsageError("--supergraph applies to the router only")
        overrides["SUPERGRAPH_PATH"] = supergraph
    settings = get_settings().replace(**overrides) if overrides else get_settings()
    module = importlib.import_module(SERVICES[service])
    app = module.create_app(settings)
    default_port = {
        "auth": settings.services.auth_port,
        "user": settings.services.user_port,
        "router": settings.services.router_port,
    }[service]
    uvicorn.run(
        app,
        host=host or settings.services.host,
        port=port or default_port,
        log_level="warning",
        lifespan="on",
    )


COMMANDS = [serve]
