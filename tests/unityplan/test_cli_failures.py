"""Every `unityplan` command ends a bad or missing setting, an unreachable server or bad input
in one line naming the cause, with exit code 1 and never a traceback."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import click
import pytest
from click.testing import CliRunner, Result

from core.config import Settings, get_settings
from core.db.migrations import migrate_global
from unityplan.cli import main
from unityplan.devstack import free_port

# Arguments that get each command past click's own checks, to where it reads its settings.
ARGUMENTS: dict[str, list[str]] = {
    "admin bootstrap": [],
    "compose": [],
    "demo": [],
    "dev": [],
    "events relay": [],
    "events streams": [],
    "infra down": [],
    "infra status": [],
    "infra up": [],
    "migrate": [],
    "plan": ["-"],
    "retention run": [],
    "schema": [],
    "serve": ["router"],
    "territory create": ["xx", "--name", "X", "--type", "country"],
    "territory list": [],
}
# The servers each command cannot run without.
NEEDS: dict[str, tuple[str, ...]] = {
    "admin bootstrap": ("DATABASE_URL", "REDIS_URL"),
    "demo": ("DATABASE_URL", "REDIS_URL"),
    "events relay": ("DATABASE_URL", "NATS_URL"),
    "events streams": ("DATABASE_URL", "NATS_URL"),
    "migrate": ("DATABASE_URL",),
    "retention run": ("DATABASE_URL",),
    "territory create": ("DATABASE_URL",),
    "territory list": ("DATABASE_URL",),
}
UNREACHABLE = {
    "DATABASE_URL": "postgresql://postgres@127.0.0.1:1/unityplan",
    "NATS_URL": "nats://127.0.0.1:1",
    "REDIS_URL": "redis://127.0.0.1:1/0",
}


def _leaf_commands(group: click.Group, prefix: str = "") -> Iterator[str]:
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from _leaf_commands(command, f"{prefix}{name} ")
        else:
            yield f"{prefix}{name}"


@pytest.fixture
def empty_devstack(tmp_path: Path) -> Iterator[dict[str, str]]:
    """An environment with no server configured and no development stack running."""
    get_settings.cache_clear()
    yield {
        "DEVSTACK_DIR": str(tmp_path / ".devstack"),
        "DATABASE_URL": "",
        "POD_DATABASE_URLS": "",
        "NATS_URL": "",
        "REDIS_URL": "",
    }
    get_settings.cache_clear()


def _run(command: str, env: dict[str, str], *extra: str) -> Result:
    get_settings.cache_clear()
    args = [*command.split(), *ARGUMENTS[command], *extra]
    # catch_exceptions=False: anything but a clean exit fails the test with its traceback.
    return CliRunner(env=env).invoke(main, args, input="{ me { id } }", catch_exceptions=False)


def _one_line_failure(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = result.output.strip().splitlines()
    assert len(lines) == 1, result.output
    assert lines[0].startswith("Error: ")
    return lines[0]


def test_every_command_is_covered() -> None:
    assert sorted(_leaf_commands(main)) == sorted(ARGUMENTS)


@pytest.mark.parametrize("command", sorted(ARGUMENTS))
@pytest.mark.parametrize(
    ("variable", "value"),
    [("APP_ENV", "bogus"), ("ROUTER_PORT", "abc"), ("POD_DATABASE_URLS", "{not json")],
)
def test_a_bad_setting_is_named_in_one_line(
    command: str, variable: str, value: str, empty_devstack: dict[str, str]
) -> None:
    line = _one_line_failure(_run(command, {**empty_devstack, variable: value}))
    assert variable in line


@pytest.mark.parametrize("service", ["auth", "user", "router"])
def test_serve_with_an_invalid_setting_names_it(
    service: str, empty_devstack: dict[str, str]
) -> None:
    get_settings.cache_clear()
    for variable, value in (("APP_ENV", "bogus"), ("ROUTER_PORT", "abc"), ("AUTH_PORT", "0")):
        env = {**empty_devstack, variable: value}
        result = CliRunner(env=env).invoke(main, ["serve", service], catch_exceptions=False)
        assert variable in _one_line_failure(result)
        get_settings.cache_clear()


@pytest.mark.parametrize("command", sorted(NEEDS))
def test_a_missing_server_says_what_to_start(command: str, empty_devstack: dict[str, str]) -> None:
    line = _one_line_failure(_run(command, empty_devstack))
    for variable in NEEDS[command]:
        assert variable in line
    assert "make dev" in line


@pytest.mark.parametrize("service", ["auth", "user"])
def test_serving_a_subgraph_without_its_servers_says_what_to_start(
    service: str, empty_devstack: dict[str, str]
) -> None:
    result = CliRunner(env=empty_devstack).invoke(main, ["serve", service], catch_exceptions=False)
    line = _one_line_failure(result)
    assert "DATABASE_URL and REDIS_URL are not set" in line
    assert "make dev" in line


@pytest.mark.parametrize("command", [c for c in sorted(NEEDS) if c not in ("events relay", "demo")])
def test_an_unreachable_server_is_named(command: str, empty_devstack: dict[str, str]) -> None:
    env = {**empty_devstack, **{name: UNREACHABLE[name] for name in NEEDS[command]}}
    line = _one_line_failure(_run(command, env))
    # The setting, or the address it holds.
    named = [name for name in NEEDS[command] if name in line or UNREACHABLE[name] in line]
    assert named, line


@pytest.fixture
def configured(settings: Settings, empty_devstack: dict[str, str]) -> dict[str, str]:
    return {
        **empty_devstack,
        "DATABASE_URL": settings.database.url,
        "POD_DATABASE_URLS": json.dumps(settings.database.pod_urls),
        "REDIS_URL": settings.redis.url,
        "REDIS_KEY_PREFIX": settings.redis.key_prefix,
    }


@pytest.mark.parametrize(
    ("args", "cause"),
    [
        (["territory", "create", "DK!", "--name", "X", "--type", "country"], "Territory codes"),
        (["territory", "create", "zz", "--name", "X", "--type", "country", "--pod", "xx"], "'xx'"),
        (["admin", "bootstrap", "--territory", "Not A Code"], "Territory codes"),
        (["admin", "bootstrap", "--territory", "atlantis"], "territory create atlantis"),
    ],
)
def test_bad_input_is_one_line(args: list[str], cause: str, configured: dict[str, str]) -> None:
    get_settings.cache_clear()
    result = CliRunner(env=configured).invoke(main, args, catch_exceptions=False)
    assert cause in _one_line_failure(result)


@pytest.mark.parametrize("command", ["schema", "plan"])
def test_a_bad_supergraph_file_is_one_line(
    command: str, tmp_path: Path, empty_devstack: dict[str, str]
) -> None:
    bad = tmp_path / "supergraph.graphql"
    bad.write_text("type Query { hello: String }\n")
    line = _one_line_failure(_run(command, empty_devstack, "--supergraph", str(bad)))
    assert "supergraph" in line.lower()


def _alembic(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(  # noqa: S603 - our own tool with fixed arguments
        [str(Path(sys.executable).with_name("alembic")), *args],
        cwd=Path(__file__).parents[2],
        env={**os.environ, **env},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.mark.parametrize(
    ("database", "args", "cause"),
    [
        ("", ["-n", "global", "upgrade", "head"], "No database configured: set DATABASE_URL"),
        ("test", ["-n", "territory", "-x", "territory=zz", "upgrade", "head"], "Territory not"),
        ("unreachable", ["-n", "territory", "-x", "territory=dk", "current"], "Cannot reach"),
    ],
)
async def test_the_alembic_command_line_fails_in_one_line(
    database: str,
    args: list[str],
    cause: str,
    settings: Settings,
    empty_devstack: dict[str, str],
) -> None:
    if database == "test":
        await migrate_global(settings)
    url = {"": "", "test": settings.database.url, "unreachable": UNREACHABLE["DATABASE_URL"]}
    result = _alembic({**empty_devstack, "DATABASE_URL": url[database]}, *args)
    output = (result.stdout + result.stderr).strip()
    assert result.returncode != 0
    assert len(output.splitlines()) == 1, output
    assert output.startswith(f"FAILED: {cause}")


def test_the_alembic_command_line_prints_every_territory_migration(
    empty_devstack: dict[str, str],
) -> None:
    result = _alembic(
        empty_devstack, "-n", "territory", "-x", "territory=dk", "upgrade", "head", "--sql"
    )
    assert result.returncode == 0, result.stderr
    assert "CREATE INDEX ix_users_search_prefix ON territory_dk.users" in result.stdout
    assert "UPDATE territory_dk.alembic_version SET version_num=" in result.stdout


def test_a_service_that_cannot_start_ends_in_one_line(
    tmp_path: Path, settings: Settings, empty_devstack: dict[str, str]
) -> None:
    bad = tmp_path / "supergraph.graphql"
    bad.write_text("not a supergraph\n")
    result = subprocess.run(  # noqa: S603 - our own entry point
        [
            str(Path(sys.executable).with_name("unityplan")),
            "serve", "router", "--port", str(free_port()), "--supergraph", str(bad),
        ],
        env={**os.environ, **empty_devstack, "REDIS_URL": settings.redis.url},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )  # fmt: skip
    assert result.returncode == 1
    assert "Traceback" not in result.stdout + result.stderr
    last = result.stderr.strip().splitlines()[-1]
    assert last.startswith("Error: The router service did not start: Supergraph"), result.stderr


@pytest.mark.parametrize("command", ["territory list", "events streams"])
def test_an_unreachable_server_is_the_only_line_a_process_prints(
    command: str, empty_devstack: dict[str, str]
) -> None:
    """As a person sees it: no warning the libraries log on the way comes before the cause."""
    result = subprocess.run(  # noqa: S603 - our own entry point
        [str(Path(sys.executable).with_name("unityplan")), *command.split()],
        env={**os.environ, **empty_devstack, **UNREACHABLE},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 1
    assert result.stdout == ""
    [line] = result.stderr.strip().splitlines()
    assert line.startswith(("Error: Cannot reach PostgreSQL (DATABASE_URL)", "Error: NATS")), line


async def test_a_litestar_start_up_failure_is_reported_by_its_cause() -> None:
    from litestar import Litestar

    from core.errors import ConfigError
    from unityplan.cli.serve import StartupWatch

    def refuse(app: Litestar) -> None:
        raise ConfigError("REDIS_URL: not configured")

    watch = StartupWatch(Litestar(route_handlers=[], on_startup=[refuse]))
    sent: list[dict[str, object]] = []
    messages = iter([{"type": "lifespan.startup"}])

    async def receive() -> dict[str, object]:
        return next(messages)

    async def send(message: dict[str, object]) -> None:
        sent.append(message)

    try:
        await watch({"type": "lifespan"}, receive, send)
    except Exception as exc:  # Litestar raises it in an exception group
        assert "REDIS_URL: not configured" in repr(exc)  # noqa: PT017 - either form
    else:
        pytest.fail("the start-up failure was swallowed")
    assert sent == [{"type": "lifespan.startup.failed", "message": ""}]
    assert watch.failure == "REDIS_URL: not configured"
