"""Commands beside a running development stack: what it provides fills in what is not set,
and explicit settings win."""

from __future__ import annotations

import os
import sys
from pathlib import Path

import pytest

from core.config import load_settings
from unityplan.devstack.discovery import find_running_stack, with_running_stack
from unityplan.devstack.processes import ProcessRecord
from unityplan.registry import registered


def _record(root: Path, name: str, port: int, pid: int | None = None) -> None:
    # This test's own process stands in for the server: it is alive and its command line
    # names the recorded executable.
    ProcessRecord(name, pid or os.getpid(), port, sys.executable).save(root)


def test_a_running_stack_fills_in_only_what_is_not_set(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    for name in ("AUTH_PORT", "USER_PORT", "ROUTER_PORT"):
        monkeypatch.delenv(name, raising=False)
    _record(tmp_path, "postgres", 4410)
    _record(tmp_path, "nats", 4411)
    _record(tmp_path, "service-auth", 4401)
    _record(tmp_path, "service-router", 4400)
    _record(tmp_path, "redis", 4412, pid=2**22 + 1)  # a pid no process has: not running

    stack = find_running_stack(tmp_path)
    assert stack.urls == {
        "DATABASE_URL": "postgresql+asyncpg://postgres@127.0.0.1:4410/unityplan",
        "NATS_URL": "nats://127.0.0.1:4411",
    }
    assert stack.ports == {"AUTH_PORT": 4401, "ROUTER_PORT": 4400}

    configured = load_settings(
        {
            "DEVSTACK_DIR": str(tmp_path),
            "DATABASE_URL": "postgresql://me@db.example:5432/mine",
            "NATS_URL": "",
            "REDIS_URL": "",
            "ROUTER_PORT": 4000,
        }
    )
    settings, _ = with_running_stack(configured)
    assert settings.database.url == "postgresql+asyncpg://me@db.example:5432/mine"
    assert settings.nats.url == "nats://127.0.0.1:4411"
    assert settings.redis.url == "", "a server that stopped is not used"
    assert registered("router").port(settings) == 4000, "an explicit port wins"
    assert registered("auth").port(settings) == 4401
    assert registered("user").port(settings) == 8002


def test_nothing_recorded_changes_nothing(tmp_path: Path) -> None:
    configured = load_settings({"DEVSTACK_DIR": str(tmp_path / "none"), "DATABASE_URL": ""})
    settings, stack = with_running_stack(configured)
    assert stack.empty
    assert settings is configured
