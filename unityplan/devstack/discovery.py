"""The development stack running from a checkout, found through its pid records under
DEVSTACK_DIR, so a command in a second terminal uses it without being configured.

`unityplan dev` and `unityplan infra up` record each embedded server (`run/<name>.json`) and
each service (`run/service-<name>.json`) with its port; a record counts only while its process
still runs.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field, replace
from pathlib import Path

from core.config import Settings
from unityplan.devstack.processes import ProcessRecord
from unityplan.devstack.replicas import PORT_VARIABLES
from unityplan.devstack.servers import SERVER_TYPES
from unityplan.devstack.services import SERVICE_ORDER, service_record_name

# The setting each embedded server stands in for.
URL_VARIABLES = {name: server.url_variable for name, server in SERVER_TYPES.items()}


@dataclass(frozen=True)
class RunningStack:
    """What runs from `root`: the embedded servers' URLs and the services' ports, by setting."""

    root: Path
    urls: dict[str, str] = field(default_factory=dict)  # DATABASE_URL -> postgresql+asyncpg://...
    ports: dict[str, int] = field(default_factory=dict)  # ROUTER_PORT -> 4000

    @property
    def empty(self) -> bool:
        return not self.urls and not self.ports

    def settings(self) -> dict[str, str]:
        """Every value it provides, as `Settings.replace` takes them."""
        return {**self.urls, **{name: str(port) for name, port in self.ports.items()}}


def recorded_services(root: Path) -> list[tuple[ProcessRecord, bool]]:
    """The service processes (`auth`, `user`, `router`, replicas too) recorded under `root`,
    each with whether it still runs; named as `unityplan dev` prints them."""
    found = []
    for path in sorted((Path(root).absolute() / "run").glob("service-*.json")):
        name = path.stem
        record = ProcessRecord.load(Path(root).absolute(), name)
        if record is not None:
            shown = replace(record, name=name.removeprefix("service-"))
            found.append((shown, record.is_alive()))
    return found


def find_running_stack(root: Path) -> RunningStack:
    """The servers and services recorded under `root` that still run (possibly none)."""
    root = Path(root).absolute()
    urls: dict[str, str] = {}
    for name, server_type in SERVER_TYPES.items():
        record = ProcessRecord.load(root, name)
        if record is not None and record.is_alive():
            urls[URL_VARIABLES[name]] = server_type(root, record.port).url()
    ports: dict[str, int] = {}
    for service in SERVICE_ORDER:
        record = ProcessRecord.load(root, service_record_name(service))
        if record is not None and record.is_alive():
            ports[PORT_VARIABLES[service]] = record.port
    return RunningStack(root, urls, ports)


# How an unset setting looks in Settings.
_SERVER_URLS: dict[str, Callable[[Settings], str]] = {
    "DATABASE_URL": lambda s: s.database.url,
    "NATS_URL": lambda s: s.nats.url,
    "REDIS_URL": lambda s: s.redis.url,
}
_PORT_SERVICES = {variable: name for name, variable in PORT_VARIABLES.items()}


def server_url(settings: Settings, variable: str) -> str:
    """The value of server setting `variable` (DATABASE_URL, NATS_URL, REDIS_URL); "" unset."""
    return _SERVER_URLS[variable](settings)


def with_running_stack(settings: Settings) -> tuple[Settings, RunningStack]:
    """`settings` with every unset server URL, and every service port not set explicitly,
    taken from the stack running from DEVSTACK_DIR; and that stack."""
    stack = find_running_stack(settings.devstack.dir)
    explicit_ports = settings.services.ports
    overrides = {
        name: value
        for name, value in stack.settings().items()
        if (name in _SERVER_URLS and not server_url(settings, name))
        or (name in _PORT_SERVICES and _PORT_SERVICES[name] not in explicit_ports)
    }
    return (settings.replace(**overrides) if overrides else settings), stack
