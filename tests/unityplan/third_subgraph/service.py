"""The third subgraph's one registry entry, named by the entry point
`third = "tests.unityplan.third_subgraph.service:SERVICE"` of the group `unityplan.services`."""

from __future__ import annotations

from typing import Any

from strawberry.schema import BaseSchema

from core.config import Settings
from unityplan.registry import Service


def _app(settings: Settings) -> Any:
    from tests.unityplan.third_subgraph.app import create_app

    return create_app(settings)


def _schema() -> BaseSchema:
    from tests.unityplan.third_subgraph.schema import build_schema

    return build_schema()


SERVICE = Service("third", _app, 8009, needs=("DATABASE_URL", "REDIS_URL"), build_schema=_schema)
