"""`unityplan serve <service>`: run one service of the registry under uvicorn."""

from __future__ import annotations

import gc
import logging
from typing import TYPE_CHECKING, Any

import click

from core.config import Settings
from unityplan.cli._failures import describe_failure
from unityplan.cli._settings import command_settings, configured_settings
from unityplan.devstack.processes import port_in_use
from unityplan.registry import SERVICES, registered

if TYPE_CHECKING:
    import uvicorn

# What uvicorn logs when an app's start-up failed: we say why, in one line, instead.
_STARTUP_FAILED_LOG = "Application startup failed. Exiting."

Scope = dict[str, Any]
Message = dict[str, Any]


# Allocations between young collections (Python's default is 700), and young collections
# between middle-aged ones (default 10). With the defaults, young collections ran in the
# middle of every event's fan-out to a thousand subscriptions and promoted its objects still in
# flight; those promotions set off full collections, each walking every open subscription's
# objects: pauses of 55 to 75 ms, the whole p99 at 1,000 subscribers (bench/subscriptions.py).
_YOUNG_COLLECTION_EVERY = 10_000
_MIDDLE_COLLECTION_EVERY = 20


def freeze_startup_objects() -> None:
    """Keep what start-up built (schemas, the supergraph and its query graph, imported code)
    out of the garbage collector's full collections: they live as long as the process, and
    walking them made each full collection pause the service for about 100 ms. Then collect
    less often, so that what an event allocates is freed before a collection sees it."""
    gc.collect()
    gc.freeze()
    _, _, full = gc.get_threshold()
    gc.set_threshold(_YOUNG_COLLECTION_EVERY, _MIDDLE_COLLECTION_EVERY, full)


class StartupWatch:
    """An ASGI app around another that remembers why its start-up failed, instead of letting
    uvicorn print the traceback the app's lifespan reports; once start-up completed, it
    freezes what start-up built (`freeze_startup_objects`)."""

    def __init__(self, app: Any) -> None:
        self.app = app
        self.failure: str | None = None

    async def __call__(self, scope: Scope, receive: Any, send: Any) -> None:
        if scope["type"] != "lifespan":
            await self.app(scope, receive, send)
            return

        async def watched(message: Message) -> None:
            if message["type"] == "lifespan.startup.failed":
                self.failure = self.failure or _cause(message.get("message") or "")
                message = {**message, "message": ""}
            elif message["type"] == "lifespan.startup.complete":
                freeze_startup_objects()
            await send(message)

        try:
            await self.app(scope, receive, watched)
        except Exception as exc:
            self.failure = self.failure or describe_failure(exc)
            raise


def _cause(report: str) -> str:
    """The cause in a start-up failure report: its one line, or, in a traceback (of an
    exception group too), the message of the innermost `module.Error: message` line."""
    lines = [line.strip(" |+-") for line in report.splitlines()]
    lines = [line for line in lines if line]
    if not lines:
        return ""
    if "Traceback (most recent call last)" not in lines[0]:
        return lines[0]
    for line in reversed(lines):
        name, colon, message = line.partition(": ")
        if colon and name and " " not in name and not name.startswith("File"):
            return message
    return lines[-1]


class _QuietStartupFailure(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return record.getMessage() != _STARTUP_FAILED_LOG


def server_config(app: Any, settings: Settings, host: str, port: int) -> uvicorn.Config:
    """How uvicorn serves a service."""
    import uvicorn

    return uvicorn.Config(
        app,
        host=host,
        port=port,
        log_level="warning",
        lifespan="on",
        # uvicorn would otherwise take X-Forwarded-For from any local peer as the client:
        # the router decides that itself (TRUSTED_PROXIES), the subgraphs believe the router.
        proxy_headers=False,
        # Only the router serves WebSockets to clients (subgraphs only to the router, which
        # never asks for compression).
        ws_per_message_deflate=settings.router.websocket_compression,
    )


@click.command()
@click.argument("service", type=click.Choice(sorted(entry.name for entry in SERVICES)))
@click.option("--host", default=None, help="Interface to bind (default SERVICE_HOST).")
@click.option(
    "--port",
    type=click.IntRange(1, 65535),
    default=None,
    help="Port (default the service's <SERVICE>_PORT: AUTH_PORT, ROUTER_PORT, ...).",
)
@click.option(
    "--supergraph",
    type=click.Path(exists=True, dir_okay=False),
    default=None,
    help="Router only: serve this supergraph SDL file (hot-reloaded) instead of composing.",
)
def serve(service: str, host: str | None, port: int | None, supergraph: str | None) -> None:
    """Run SERVICE until interrupted.

    Servers not configured (DATABASE_URL, NATS_URL, REDIS_URL) are those of the development
    stack running from this checkout, if one runs.
    """
    import uvicorn

    entry = registered(service)
    if supergraph and entry.is_subgraph:
        raise click.UsageError("--supergraph applies to the router only")
    configured = configured_settings()
    # Servers and the other services' ports may come from the running development stack; this
    # service's own port stays the configured one (the stack's copy already holds it).
    own_port = entry.port(configured)
    overrides: dict[str, Any] = {entry.port_variable: own_port}
    if supergraph:
        overrides["SUPERGRAPH_PATH"] = supergraph
    settings = command_settings(*entry.needs).replace(**overrides)
    port = port or own_port
    if port_in_use(port):
        raise click.ClickException(
            f"Port {port} is already in use: set {entry.port_variable} or --port to a free one"
        )
    app = StartupWatch(entry.create_app(settings))
    config = server_config(app, settings, host or settings.services.host, port)
    logging.getLogger("uvicorn.error").addFilter(_QuietStartupFailure())
    server = uvicorn.Server(config)
    try:
        server.run()
    except SystemExit:
        if server.started:
            raise
        # uvicorn exits when start-up fails (a bind error it has logged, or the lifespan's).
    if not server.started:
        raise click.ClickException(
            f"The {service} service did not start: {app.failure or 'see the lines above'}"
        )


COMMANDS = [serve]
