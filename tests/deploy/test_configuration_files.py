"""compose.yaml, .env.example and the Prometheus config agree with the code's settings."""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import yaml
from pydantic import AliasChoices

from core.config import _GROUPS, ServiceSettings, load_settings
from unityplan.compose_file import render
from unityplan.registry import SERVICES, registered

ROOT = Path(__file__).resolve().parents[2]
APP_SERVICES = {service.name: service.port_variable for service in SERVICES}


def _settings_variables() -> set[str]:
    names: set[str] = set()
    for group in _GROUPS.values():
        for name, field in group.model_fields.items():
            if group is ServiceSettings and name in ("ports", "urls"):
                continue  # the registry's services' variables, below
            alias = field.validation_alias
            assert isinstance(alias, AliasChoices), field
            names.update(str(choice) for choice in alias.choices)
    names.update(service.port_variable for service in SERVICES)
    names.update(service.url_variable for service in SERVICES if service.is_subgraph)
    return names


def _env_example() -> dict[str, str]:
    values: dict[str, str] = {}
    for line in (ROOT / ".env.example").read_text().splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.partition("=")
            values[name.strip()] = value
    return values


def _compose() -> dict[str, Any]:
    return yaml.safe_load((ROOT / "compose.yaml").read_text())


def test_env_example_documents_exactly_the_settings() -> None:
    assert set(_env_example()) == _settings_variables()


def test_env_example_values_are_valid_settings() -> None:
    values = {k: v for k, v in _env_example().items() if v != ""}
    load_settings(values)  # raises ConfigError naming the variable otherwise


def test_compose_has_every_service_the_code_expects() -> None:
    services = _compose()["services"]
    expected = {"postgres", "nats", "redis", "jaeger", "prometheus", "grafana", *APP_SERVICES}
    assert expected <= set(services)
    assert "timescale" in services["postgres"]["image"]
    assert "-js" in services["nats"]["command"]
    assert "8222" in " ".join(services["nats"]["command"])


def test_compose_app_environment_uses_settings_names_and_consistent_ports() -> None:
    compose = _compose()
    services = compose["services"]
    known = _settings_variables()
    for name, port_variable in APP_SERVICES.items():
        service = services[name]
        env = service["environment"]
        assert set(env) <= known, set(env) - known
        port = env[port_variable]
        assert service["command"] == ["serve", name]
        assert f"{port}:{port}" in service["ports"]
        if registered(name).is_subgraph:
            assert env[registered(name).url_variable] == f"http://{name}:{port}/graphql"
    load_settings({k: v for k, v in services["auth"]["environment"].items() if "$" not in v})


def test_prometheus_scrapes_every_app_service_on_its_port() -> None:
    services = _compose()["services"]
    config = yaml.safe_load((ROOT / "deploy" / "prometheus.yml").read_text())
    targets = {
        job["job_name"]: job["static_configs"][0]["targets"][0] for job in config["scrape_configs"]
    }
    for name, port_variable in APP_SERVICES.items():
        assert targets[name] == f"{name}:{services[name]['environment'][port_variable]}"
    exporter_host = targets["nats"].split(":")[0]
    assert exporter_host in services


def test_dashboards_are_valid_with_unique_panel_ids() -> None:
    for path in (ROOT / "deploy" / "grafana" / "dashboards").glob("*.json"):
        dashboard = json.loads(path.read_text())
        ids = [panel["id"] for panel in dashboard["panels"]]
        assert len(ids) == len(set(ids)), path
        # Gauges (`outbox_backlog`, `*_bytes`) are fine too; that every metric a panel uses is
        # exported is checked against the running services in tests/e2e/test_metrics_smoke.py.
        for panel in dashboard["panels"]:
            for target in panel["targets"]:
                assert re.search(r"[a-z_]+_[a-z]+", target["expr"])


def test_compose_file_is_the_one_generated_from_the_registry() -> None:
    assert (ROOT / "compose.yaml").read_text() == render(), "run `make compose-file`"
