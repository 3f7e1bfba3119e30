"""Configuration: typed groups from the environment, failures naming the variable."""

from __future__ import annotations

import pytest

from core.config import load_settings
from core.errors import ConfigError


def test_overrides_are_typed_and_grouped() -> None:
    settings = load_settings(
        {
            "DATABASE_URL": "postgresql://postgres@db:5432/unityplan",
            "POD_DATABASE_URLS": '{"eu": "postgresql://postgres@db2/unityplan"}',
            "AUTH_PORT": "9001",
        }
    )
    assert settings.database.url == "postgresql+asyncpg://postgres@db:5432/unityplan"
    assert settings.database.all_pods() == {
        "default": "postgresql+asyncpg://postgres@db:5432/unityplan",
        "eu": "postgresql+asyncpg://postgres@db2/unityplan",
    }
    assert settings.services.port("auth") == 9001
    assert settings.services.subgraph_url("auth") == "http://127.0.0.1:9001/graphql"


def test_invalid_value_names_the_variable() -> None:
    with pytest.raises(ConfigError, match="AUTH_PORT"):
        load_settings({"AUTH_PORT": "not-a-port"})
    with pytest.raises(ConfigError, match="POD_DATABASE_URLS"):
        load_settings({"POD_DATABASE_URLS": "{not json"})


def test_unknown_variable_is_refused() -> None:
    with pytest.raises(ConfigError, match="DATABSE_URL"):
        load_settings({"DATABSE_URL": "x"})


def test_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JWT_ALGORITHM", "HS256")
    with pytest.raises(ConfigError, match="JWT_ALGORITHM"):
        load_settings()
    monkeypatch.setenv("JWT_ALGORITHM", "RS256")
    assert load_settings().security.jwt_algorithm == "RS256"


def test_replace_keeps_other_values() -> None:
    base = load_settings({"REDIS_KEY_PREFIX": "a:", "NATS_URL": "nats://x:1"})
    changed = base.replace(NATS_URL="nats://y:2")
    assert changed.nats.url == "nats://y:2"
    assert changed.redis.key_prefix == "a:"
