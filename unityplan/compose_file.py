"""compose.yaml, the production-like stack for a Docker engine, generated from the service
registry: the shared servers and the migration step are fixed, each registered service gets its
port, URL, container and dependencies from its entry. `make compose-file` writes it (a test
checks that the committed file is the generated one)."""

from __future__ import annotations

import json
import sys
from collections.abc import Iterable

from unityplan.registry import SERVICES, Service, subgraphs

_HEADER = """\
# The production-like stack, for machines with a Docker engine: `docker compose up --build`.
# Generated from the service registry by `make compose-file` (unityplan/compose_file.py): edit
# that, not this file. Variable names are exactly those of core/config.py (see .env.example).

x-app-env: &app-env
  APP_ENV: production
  DATABASE_URL: postgresql://unityplan:unityplan@postgres:5432/unityplan
  NATS_URL: nats://nats:4222
  REDIS_URL: redis://redis:6379/0
  OTEL_EXPORTER_OTLP_ENDPOINT: http://jaeger:4318
  LOG_FORMAT: json
  SERVICE_HOST: 0.0.0.0
"""

_SECRETS = """\
  # Production signing keys: a JSON list of PEM private keys, newest first.
  JWT_PRIVATE_KEYS: ${JWT_PRIVATE_KEYS:?set JWT_PRIVATE_KEYS to a JSON list of PEM keys}
  # The router's proof to the subgraphs: shared secrets (32+ characters), newest first.
  SUBGRAPH_SIGNING_KEYS: ${SUBGRAPH_SIGNING_KEYS:?set SUBGRAPH_SIGNING_KEYS to a shared secret}
  # Seals TOTP secrets and invitation tokens at rest: secrets (32+ characters), newest first.
  DATA_ENCRYPTION_KEYS: ${DATA_ENCRYPTION_KEYS:?set DATA_ENCRYPTION_KEYS to a secret}
"""

_SERVERS = """\
services:
  postgres:
    image: timescale/timescaledb:latest-pg17
    environment:
      POSTGRES_USER: unityplan
      POSTGRES_PASSWORD: unityplan
      POSTGRES_DB: unityplan
    ports: ["5432:5432"]
    volumes: [postgres-data:/var/lib/postgresql/data]
    healthcheck:
      test: ["CMD-SHELL", "pg_isready -U unityplan -d unityplan"]
      interval: 5s
      timeout: 3s
      retries: 20

  nats:
    image: nats:2.10
    command: ["-js", "-sd", "/data", "-m", "8222"]
    ports: ["4222:4222", "8222:8222"]
    volumes: [nats-data:/data]

  nats-exporter:
    image: natsio/prometheus-nats-exporter:0.15.0
    command: ["-varz", "-connz", "-jsz=all", "http://nats:8222"]
    ports: ["7777:7777"]
    depends_on: [nats]

  redis:
    image: redis:7
    command: ["redis-server", "--appendonly", "yes"]
    ports: ["6379:6379"]
    volumes: [redis-data:/data]

  jaeger:
    image: jaegertracing/all-in-one:1.62.0
    environment:
      COLLECTOR_OTLP_ENABLED: "true"
    ports: ["16686:16686", "4318:4318"]

  prometheus:
    image: prom/prometheus:v2.55.0
    command: ["--config.file=/etc/prometheus/prometheus.yml"]
    volumes:
      - ./deploy/prometheus.yml:/etc/prometheus/prometheus.yml:ro
      - ./deploy/prometheus:/etc/prometheus/prometheus:ro
    ports: ["9090:9090"]

  grafana:
    image: grafana/grafana:11.3.0
    environment:
      GF_AUTH_ANONYMOUS_ENABLED: "true"
      GF_AUTH_ANONYMOUS_ORG_ROLE: Viewer
    volumes:
      - ./deploy/grafana/provisioning:/etc/grafana/provisioning:ro
      - ./deploy/grafana/dashboards:/var/lib/grafana/dashboards:ro
    ports: ["3000:3000"]
    depends_on: [prometheus]

  # One-shot: migrate every schema and provision the demo territory, then exit.
  migrate:
    build: .
    command: ["territory", "create", "dk", "--name", "Denmark", "--type", "country",
              "--timezone", "Europe/Copenhagen", "--locale", "da_DK", "--language", "da"]
    environment: *app-env
    depends_on:
      postgres: {condition: service_healthy}
"""

_SERVER_VOLUMES = ("postgres-data", "nats-data", "redis-data")
# What a subgraph waits for: the migrated database, and the servers its kit connects to.
_SUBGRAPH_DEPENDS_ON = """\
    depends_on:
      migrate: {condition: service_completed_successfully}
      nats: {condition: service_started}
      redis: {condition: service_started}
"""


def _flow(items: Iterable[str], *, quoted: bool = True) -> str:
    """A YAML flow list: `["serve", "auth"]`, or `[auth, user]` of plain names."""
    return "[" + ", ".join(json.dumps(item) if quoted else item for item in items) + "]"


def _service(service: Service) -> str:
    port = service.default_port
    lines = [
        f"  {service.name}:",
        "    build: .",
        f"    command: {_flow(['serve', service.name])}",
    ]
    deployment = service.deployment
    if deployment.environment:
        lines.append("    environment:")
        lines.append("      <<: *app-env")
        lines.extend(f"      {name}: {value}" for name, value in deployment.environment)
    else:
        lines.append("    environment: *app-env")
    lines.append(f"    ports: {_flow([f'{port}:{port}'])}")
    if deployment.volumes:
        lines.append(f"    volumes: {_flow(deployment.volumes, quoted=False)}")
    text = "\n".join(lines) + "\n"
    if service.is_subgraph:
        return text + _SUBGRAPH_DEPENDS_ON
    # The router composes the subgraphs: it starts after them.
    return text + f"    depends_on: {_flow((entry.name for entry in subgraphs()), quoted=False)}\n"


def render() -> str:
    """The compose file of the registry's services."""
    placement = [f'  {entry.port_variable}: "{entry.default_port}"' for entry in SERVICES]
    placement += [
        f"  {entry.url_variable}: http://{entry.name}:{entry.default_port}/graphql"
        for entry in subgraphs()
    ]
    volumes = [*_SERVER_VOLUMES]
    for entry in SERVICES:
        volumes += [volume.split(":")[0] for volume in entry.deployment.volumes]
    return "\n".join(
        [
            _HEADER + "\n".join(placement) + "\n" + _SECRETS,
            _SERVERS,
            *(_service(entry) for entry in SERVICES),
            "volumes:\n" + "".join(f"  {volume}:\n" for volume in volumes),
        ]
    )


def main() -> None:
    """Print the compose file (`python -m unityplan.compose_file`)."""
    sys.stdout.write(render())


if __name__ == "__main__":
    main()
