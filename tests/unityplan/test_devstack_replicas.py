"""Replica sets of `unityplan dev --replicas N`: their ports, names and environments."""

from __future__ import annotations

import pytest
from click.testing import CliRunner

from core.config import ServiceSettings
from core.errors import ConfigError
from unityplan.cli.dev import dev
from unityplan.devstack.replicas import MAX_REPLICAS, plan_replicas


def _services(**ports: int) -> ServiceSettings:
    return ServiceSettings.model_validate({"ports": ports})


def test_one_replica_is_the_configured_ports() -> None:
    [only] = plan_replicas(_services(auth=8001, user=8002, router=4000), 1)
    assert only.ports == {"auth": 8001, "user": 8002, "router": 4000}
    assert [only.label(name) for name in ("auth", "user", "router")] == ["auth", "user", "router"]


def test_each_further_replica_takes_the_next_ports_and_its_own_subgraphs() -> None:
    sets = plan_replicas(_services(auth=8001, user=8002, router=4000), 3)
    assert [s.ports for s in sets] == [
        {"auth": 8001, "user": 8002, "router": 4000},
        {"auth": 8003, "user": 8004, "router": 4001},
        {"auth": 8005, "user": 8006, "router": 4002},
    ]
    assert [sets[2].label(name) for name in ("auth", "router")] == ["auth-3", "router-3"]
    # The second router composes from the second auth and user (their ports reach it).
    assert sets[1].environment() == {
        "AUTH_PORT": "8003",
        "USER_PORT": "8004",
        "ROUTER_PORT": "4001",
    }


@pytest.mark.parametrize(
    ("ports", "replicas", "message"),
    [
        ({"auth": 8001, "user": 8002, "router": 8003}, 2, "both use port 8003"),
        ({"auth": 65534, "user": 65535, "router": 4000}, 2, "would need port"),
        ({}, 0, "between 1 and"),
        ({}, MAX_REPLICAS + 1, "between 1 and"),
    ],
)
def test_a_plan_that_does_not_fit_is_refused_before_anything_starts(
    ports: dict[str, int], replicas: int, message: str
) -> None:
    with pytest.raises(ConfigError, match=message):
        plan_replicas(_services(**ports), replicas)


def test_the_command_takes_a_replica_count_within_bounds() -> None:
    result = CliRunner().invoke(dev, ["--replicas", "0"])
    assert result.exit_code == 2
    assert "--replicas" in result.output
    assert "--replicas" in CliRunner().invoke(dev, ["--help"]).output
