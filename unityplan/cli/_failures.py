"""How a `unityplan` command fails: one line naming the cause and exit code 1, never a traceback.

`OneLineGroup` turns whatever a command raises into that line; `unityplan --traceback CMD` shows
the traceback instead, for bugs.
"""

from __future__ import annotations

import logging
from typing import Any

import click
from nats.errors import Error as NatsError
from redis.exceptions import RedisError
from sqlalchemy.exc import DBAPIError, ProgrammingError

from core.errors import ConfigError, InfrastructureError, UnityPlanError

TRACEBACK_FLAG = "--traceback"
# Commands that run until stopped: what their libraries log is part of their output.
LONG_RUNNING = frozenset({"dev", "serve", "events"})


def quiet_library_warnings() -> None:
    """A command that answers once says what it did or why it failed; the warnings its
    libraries log on the way (a registry listener that cannot connect, NATS reconnecting)
    would only repeat that failure."""
    logging.getLogger().setLevel(logging.ERROR)


def one_line(text: str) -> str:
    """The first non-blank line of `text` (a failure's cause; details may follow it)."""
    for line in text.splitlines():
        if line.strip():
            return line.strip()
    return ""


def describe_failure(exc: BaseException) -> str:
    """One line saying why a command failed, for the operator who ran it."""
    while isinstance(exc, BaseExceptionGroup) and len(exc.exceptions) == 1:
        exc = exc.exceptions[0]  # a task group's wrapping says nothing of the cause
    if isinstance(exc, UnityPlanError):
        field = exc.extensions.get("field")
        return exc.message + (f" ({field})" if field else "")
    if isinstance(exc, ProgrammingError) and "does not exist" in str(exc.orig):
        return "The database has no UnityPlan schema yet: run `unityplan migrate`"
    if isinstance(exc, DBAPIError):
        return f"Database error: {one_line(str(exc.orig))}"
    if isinstance(exc, RedisError):
        return f"Redis unavailable (REDIS_URL): {one_line(str(exc))}"
    if isinstance(exc, NatsError):
        return f"NATS unavailable (NATS_URL): {one_line(str(exc)) or type(exc).__name__}"
    if isinstance(exc, OSError) and (server := _server_behind(exc)) is not None:
        label, variable = server
        return f"Cannot reach {label} ({variable}): {one_line(str(exc)) or type(exc).__name__}"
    if isinstance(exc, ConfigError | InfrastructureError | OSError):
        return one_line(str(exc))
    cause = one_line(str(exc))
    return (
        f"Unexpected {type(exc).__name__}"
        + (f": {cause}" if cause else "")
        + f" (`unityplan {TRACEBACK_FLAG} ...` shows where)"
    )


# The client library in a connection failure's traceback, and the server and setting it means.
_CLIENT_LIBRARIES = {
    "asyncpg": ("PostgreSQL", "DATABASE_URL"),
    "redis": ("Redis", "REDIS_URL"),
    "nats": ("NATS", "NATS_URL"),
    "httpx": ("a service", "AUTH_PORT, USER_PORT, ROUTER_PORT"),
}


def _server_behind(exc: BaseException) -> tuple[str, str] | None:
    """Which server a connection failure was about, from the deepest client library frame."""
    found = None
    traceback = exc.__traceback__
    while traceback is not None:
        module = str(traceback.tb_frame.f_globals.get("__name__", ""))
        library = _CLIENT_LIBRARIES.get(module.partition(".")[0])
        found = library or found
        traceback = traceback.tb_next
    return found


class OneLineGroup(click.Group):
    """A command group whose commands end any failure in one line (see `describe_failure`)."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.Abort):
            raise
        except Exception as exc:
            if ctx.find_root().params.get("traceback"):
                raise
            raise click.ClickException(describe_failure(exc)) from None
