"""`unityplan migrate` and `unityplan territory create|list` on the test databases."""

from __future__ import annotations

import json
from collections.abc import Iterator

import pytest
from click.testing import CliRunner, Result

from core.config import Settings, get_settings
from tests.conftest import SECOND_POD
from unityplan.cli import main


@pytest.fixture
def run_cli(settings: Settings) -> Iterator[CliRunner]:
    """A runner whose process settings point at this session's databases."""
    runner = CliRunner(
        env={
            "DATABASE_URL": settings.database.url,
            "POD_DATABASE_URLS": json.dumps(settings.database.pod_urls),
        }
    )
    get_settings.cache_clear()
    yield runner
    get_settings.cache_clear()


def _invoke(runner: CliRunner, *args: str) -> Result:
    return runner.invoke(main, list(args), catch_exceptions=False)


def test_create_list_and_migrate(run_cli: CliRunner, run_id: str) -> None:
    code = f"se-{run_id}"
    args = ["territory", "create", code, "--name", "Sweden", "--type", "country"]
    extra = ["--timezone", "Europe/Stockholm", "--locale", "sv_SE", "--language", "sv"]
    created = _invoke(run_cli, *args, *extra, "--pod", SECOND_POD)
    assert created.exit_code == 0, created.output
    schema = f"territory_se_{run_id}"
    assert f"schema {schema} on pod {SECOND_POD}" in created.output

    again = _invoke(run_cli, *args)
    assert again.exit_code == 0, again.output
    assert f"on pod {SECOND_POD}" in again.output

    community = _invoke(
        run_cli,
        "territory", "create", f"se-malmo-{run_id}", "--name", "Malmö",
        "--type", "community", "--parent", code,
    )  # fmt: skip
    assert community.exit_code == 0, community.output

    listed = _invoke(run_cli, "territory", "list")
    assert listed.exit_code == 0, listed.output
    lines = {line.split()[0]: line.split() for line in listed.output.splitlines()[1:]}
    assert lines[code][-3:] == [SECOND_POD, schema, "yes"]
    assert lines[f"se-malmo-{run_id}"][3] == code

    migrated = _invoke(run_cli, "migrate")
    assert migrated.exit_code == 0, migrated.output
    assert f"{schema} on pod {SECOND_POD}: up to date" in migrated.output
    assert "global on pod default: up to date" in migrated.output
    assert ", 0 upgraded." in migrated.output


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--type", "country", "--pod", "atlantis"], "Unknown pod 'atlantis' (podId)"),
        (["--type", "community"], "(parentCode)"),
        (["--type", "country", "--parent", "dk"], "(parentCode)"),
    ],
)
def test_refusals_are_messages_not_tracebacks(
    run_cli: CliRunner, run_id: str, args: list[str], message: str
) -> None:
    result = _invoke(run_cli, "territory", "create", f"cli-bad-{run_id}", "--name", "X", *args)
    assert result.exit_code == 1
    assert message in result.output
    assert "Traceback" not in result.output


def test_malicious_code_is_refused(run_cli: CliRunner) -> None:
    result = _invoke(
        run_cli, "territory", "create", "dk; drop schema global", "--name", "X", "--type", "country"
    )
    assert result.exit_code == 1
    assert "Territory codes are" in result.output
