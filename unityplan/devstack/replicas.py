"""Replica sets of `unityplan dev --replicas N`: which ports each auth, user and router process
gets, planned without starting anything.

Replica set 1 is the configured ports. Set k adds 2(k-1) to each subgraph's port (auth and user
sit next to each other: 8001/8002, then 8003/8004, ...) and k-1 to the router's (4000, 4001,
...). Each router composes from the subgraphs of its own set, so a mutation through one router
and a subscription through another cross processes only through NATS, Redis and PostgreSQL.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.config import ServiceSettings
from core.errors import ConfigError
from unityplan.registry import SERVICES, subgraphs

MAX_REPLICAS = 8
SUBGRAPHS: tuple[str, ...] = tuple(subgraph.name for subgraph in subgraphs())
PORT_VARIABLES = {service.name: service.port_variable for service in SERVICES}


@dataclass(frozen=True)
class ReplicaSet:
    """One auth, user and router process each, with their ports; `index` counts from 1."""

    index: int
    ports: dict[str, int]

    def label(self, service: str) -> str:
        """How the process is named in output and pid records: `auth`, then `auth-2`, ..."""
        return service if self.index == 1 else f"{service}-{self.index}"

    def environment(self) -> dict[str, str]:
        """What this set's processes must see: their own ports, and the router its subgraphs'."""
        return {PORT_VARIABLES[name]: str(port) for name, port in self.ports.items()}


def plan_replicas(services: ServiceSettings, replicas: int) -> list[ReplicaSet]:
    """The `replicas` sets to run; ConfigError if the count or a port does not fit."""
    if not 1 <= replicas <= MAX_REPLICAS:
        raise ConfigError(f"Replicas must be between 1 and {MAX_REPLICAS}, not {replicas}")
    base = {service.name: services.port(service.name, service.default_port) for service in SERVICES}
    sets = [
        ReplicaSet(
            index=index + 1,
            ports={
                name: port + index * (len(SUBGRAPHS) if name in SUBGRAPHS else 1)
                for name, port in base.items()
            },
        )
        for index in range(replicas)
    ]
    taken: dict[int, str] = {}
    for replica in sets:
        for name, port in replica.ports.items():
            if port > 65535:
                raise ConfigError(f"{replica.label(name)} would need port {port}: lower the ports")
            if port in taken:
                raise ConfigError(
                    f"{replica.label(name)} and {taken[port]} would both use port {port}: "
                    f"set {', '.join(PORT_VARIABLES.values())} further apart"
                )
            taken[port] = replica.label(name)
    return sets
