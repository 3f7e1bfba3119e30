"""`unityplan admin bootstrap`: a new territory becomes usable without SQL."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from core.config import Settings, get_settings
from tests.subgraphs.auth.conftest import Territories
from unityplan.cli import main


@pytest.fixture
def configured(
    auth_settings: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[Path]:
    """The command's environment: this session's servers, a devstack dir of its own."""
    environment = {
        "DATABASE_URL": auth_settings.database.url,
        "POD_DATABASE_URLS": json.dumps(auth_settings.database.pod_urls),
        "REDIS_URL": auth_settings.redis.url,
        "REDIS_KEY_PREFIX": auth_settings.redis.key_prefix,
        "DEVSTACK_DIR": str(tmp_path),
        "ARGON2_MEMORY_KIB": "1024",
        "ARGON2_TIME_COST": "1",
    }
    for name, value in environment.items():
        monkeypatch.setenv(name, value)
    get_settings.cache_clear()
    yield tmp_path
    get_settings.cache_clear()


def test_admin_bootstrap_prints_a_usable_invitation(
    configured: Path, territories: Territories
) -> None:
    runner = CliRunner()
    first = runner.invoke(
        main, ["admin", "bootstrap", "--territory", territories.home.code, "--username", "cli_root"]
    )
    assert first.exit_code == 0, first.output
    assert "Platform admin 'cli_root' created" in first.output
    token = re.search(r"Invitation token: (inv_[0-9a-f]{32})", first.output)
    assert token is not None
    password_file = configured / "admin-password-cli_root"
    assert f"Password file: {password_file}" in first.output
    password = password_file.read_text()
    again = runner.invoke(
        main, ["admin", "bootstrap", "--territory", territories.home.code, "--username", "cli_root"]
    )
    assert again.exit_code == 0, again.output
    assert "already existed" in again.output
    assert token.group(1) in again.output

    # The same admin onboards the other territory: a fresh invitation there, its file kept.
    remote = territories.remote.code
    other = runner.invoke(
        main, ["admin", "bootstrap", "--territory", remote, "--username", "cli_root"]
    )
    assert other.exit_code == 0, other.output
    assert f"Platform admin 'cli_root' already existed in {territories.home.code}." in other.output
    assert f"(into {remote}, expires" in other.output
    assert token.group(1) not in other.output
    assert password_file.read_text() == password


def test_admin_bootstrap_of_an_unknown_territory_says_what_to_do(configured: Path) -> None:
    result = CliRunner().invoke(main, ["admin", "bootstrap", "--territory", "no-such-land"])
    assert result.exit_code != 0
    assert "unityplan territory create no-such-land" in result.output
