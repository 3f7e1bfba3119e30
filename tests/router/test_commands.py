"""`unityplan schema` and `unityplan plan` on a supergraph file."""

from __future__ import annotations

from click.testing import CliRunner

from tests.router.supergraphs import FIXTURES
from unityplan.cli import main

SUPERGRAPH = str(FIXTURES / "supergraph.graphql")


def test_schema_prints_the_api_schema() -> None:
    result = CliRunner().invoke(main, ["schema", "--supergraph", SUPERGRAPH])
    assert result.exit_code == 0, result.output
    assert "type Query {" in result.output
    assert "join__" not in result.output


def test_plan_prints_the_query_plan() -> None:
    result = CliRunner().invoke(
        main, ["plan", "--supergraph", SUPERGRAPH, "-"], input="{ me { reviews { body } } }"
    )
    assert result.exit_code == 0, result.output
    assert 'Flatten(path: "me")' in result.output


def test_plan_reports_invalid_operations_clearly() -> None:
    result = CliRunner().invoke(main, ["plan", "--supergraph", SUPERGRAPH, "-"], input="{ me {")
    assert result.exit_code != 0
    assert "Syntax error" in result.output
