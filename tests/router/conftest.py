"""Router tests: every plan any of them builds is checked fetch by fetch against the schema of
the subgraph each fetch goes to (see `fetch_validation.py`)."""

from __future__ import annotations

from typing import Any

import pytest

from router.planning import QueryPlan, planner
from router.supergraph import Supergraph
from tests.router.fetch_validation import invalid_fetches


@pytest.fixture(autouse=True)
def every_fetch_is_valid_for_its_subgraph(monkeypatch: pytest.MonkeyPatch) -> None:
    build = planner.build_plan

    def checked(operation: Any, runs: Any, supergraph: Supergraph) -> QueryPlan:
        plan = build(operation, runs, supergraph)
        invalid = invalid_fetches(supergraph, plan)
        assert not invalid, "the plan sends invalid fetches:\n" + "\n".join(invalid)
        return plan

    monkeypatch.setattr(planner, "build_plan", checked)
