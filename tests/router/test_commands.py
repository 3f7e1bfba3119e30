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


def test_plan_prints_a_subscription_as_its_upstream_and_what_runs_per_event() -> None:
    """On our own composed supergraph: `userUpdated` provides the username with every event
    (no fetch per event); `newFollower` leaves it to the auth subgraph, per event."""
    provided = CliRunner().invoke(
        main,
        ["plan", "-"],
        input="subscription($id: ID!) { userUpdated(userId: $id) { id username } }",
    )
    assert provided.exit_code == 0, provided.output
    assert provided.output.startswith("Subscription {\n  Primary: ")
    assert 'Fetch(service: "user")' in provided.output
    assert "Rest:" not in provided.output
    per_event = CliRunner().invoke(
        main, ["plan", "-"], input="subscription { newFollower { node { username } } }"
    )
    assert per_event.exit_code == 0, per_event.output
    rest = per_event.output.split("Rest:", 1)[1]
    assert 'Fetch(service: "auth")' in rest
    assert "_entities" in rest
