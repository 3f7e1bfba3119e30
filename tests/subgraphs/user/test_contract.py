"""The user subgraph's schema composes with the auth subgraph's into an API schema that has
every type, field and argument of the public contract, with the contract's types."""

from __future__ import annotations

from pathlib import Path

from graphql import GraphQLEnumType, GraphQLInputObjectType, GraphQLObjectType, build_schema

from router.composition import SubgraphDefinition, compose
from router.supergraph import parse_supergraph
from subgraphs.auth.schema import schema as auth_schema
from subgraphs.user.schema import build_schema as build_user_schema

# The public API contract frontends are written against (a copy of the shared spec).
CONTRACT = Path(__file__).parent / "fixtures" / "api-contract.graphql"


def _sdl(schema: object) -> str:
    result = schema.execute_sync("{ _service { sdl } }")  # type: ignore[attr-defined]
    assert not result.errors, result.errors
    sdl: str = result.data["_service"]["sdl"]
    return sdl


def test_composed_api_schema_fulfils_the_contract() -> None:
    supergraph = parse_supergraph(
        compose(
            [
                SubgraphDefinition("auth", "http://auth/graphql", _sdl(auth_schema)),
                SubgraphDefinition("user", "http://user/graphql", _sdl(build_user_schema())),
            ]
        )
    )
    api = build_schema(supergraph.api_sdl)
    contract = build_schema(CONTRACT.read_text())
    problems = []
    for name, wanted in contract.type_map.items():
        if name.startswith("__"):
            continue
        found = api.type_map.get(name)
        if found is None:
            problems.append(f"missing type {name}")
            continue
        if isinstance(wanted, GraphQLEnumType):
            assert isinstance(found, GraphQLEnumType)
            if set(found.values) != set(wanted.values):
                problems.append(f"enum {name} values differ")
        if not isinstance(wanted, GraphQLObjectType | GraphQLInputObjectType):
            continue
        assert isinstance(found, GraphQLObjectType | GraphQLInputObjectType)
        for field_name, field in wanted.fields.items():
            got = found.fields.get(field_name)
            if got is None:
                problems.append(f"missing {name}.{field_name}")
                continue
            if str(got.type) != str(field.type):
                problems.append(f"{name}.{field_name}: {got.type}, contract {field.type}")
            for arg_name, arg in getattr(field, "args", {}).items():
                got_arg = got.args.get(arg_name)  # type: ignore[union-attr]
                if got_arg is None or str(got_arg.type) != str(arg.type):
                    problems.append(f"{name}.{field_name}({arg_name}) differs")
    assert problems == []
    # The privacy flags cross between the subgraphs but are never part of the public API.
    assert "showEmail" not in api.type_map["User"].fields  # type: ignore[union-attr]
