"""The third subgraph's schema: a root field of its own, and a field on the platform's User."""

from __future__ import annotations

from typing import Any

import strawberry
from strawberry.federation import Schema as FederationSchema
from strawberry.types import Info

from core.kit.context import ViewerContext


@strawberry.federation.type(keys=["id"])
class User:
    id: strawberry.ID

    @strawberry.field(description="What this user plans by.")
    def motto(self) -> str:
        return f"Planned together with {self.id}"

    @classmethod
    def resolve_reference(cls, id: strawberry.ID, **_: Any) -> User:
        return cls(id=id)


@strawberry.type
class Almanac:
    greeting: str


@strawberry.type
class Query:
    @strawberry.field(description="A greeting for the caller, signed in or not.")
    def almanac(self, info: Info[ViewerContext, Any]) -> Almanac:
        viewer = info.context.optional_viewer()
        return Almanac(greeting=f"Hello, {viewer.user_id if viewer else 'guest'}")


def build_schema() -> FederationSchema:
    return FederationSchema(query=Query, types=[User], federation_version="2.5")
