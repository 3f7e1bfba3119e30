"""Small real subgraphs for router tests: graphql-core schemas served over HTTP by uvicorn.

A subgraph's schema is derived from a supergraph (the types and fields that subgraph
declares) plus `_entities`; its data comes from plain resolvers given by the test.
"""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import orjson
import uvicorn
from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLScalarType,
    GraphQLSchema,
    GraphQLUnionType,
    Undefined,
    ast_from_value,
    build_schema,
    graphql,
    is_specified_scalar_type,
    print_ast,
)

from router.supergraph import Supergraph

Resolver = Callable[..., Any]
ReferenceResolver = Callable[[dict[str, Any]], Any]


def _arguments(field: Any) -> str:
    if not field.args:
        return ""
    parts = []
    for name, argument in field.args.items():
        text = f"{name}: {argument.type}"
        if argument.default_value is not Undefined:
            text += f" = {print_ast(ast_from_value(argument.default_value, argument.type))}"  # type: ignore[arg-type]
        parts.append(text)
    return "(" + ", ".join(parts) + ")"


def subgraph_sdl(supergraph: Supergraph, name: str, api: GraphQLSchema) -> str:
    """A plain SDL of what subgraph `name` serves, with `_entities` for its entity types."""
    lines: list[str] = []
    entities: list[str] = []
    query_fields: list[str] = []
    for type_name, graphql_type in api.type_map.items():
        if type_name.startswith("__") or is_specified_scalar_type(graphql_type):
            continue
        info = supergraph.types.get(type_name)
        if info is None or name not in info.subgraphs:
            continue
        if isinstance(graphql_type, GraphQLObjectType | GraphQLInterfaceType):
            fields = []
            key_fields = {i.name for k in info.keys_in(name) for i in k.fields}
            for field_name, field in graphql_type.fields.items():
                field_info = info.fields.get(field_name)
                declared = field_info is not None and field_info.source(name) is not None
                if declared or field_name in key_fields:
                    arguments = _arguments(field)
                    source = field_info.source(name) if field_info is not None else None
                    if source is not None and source.context_arguments:
                        # Arguments filled from the context are the subgraph's, not the API's.
                        extra = ", ".join(f"{a.name}: {a.type}" for a in source.context_arguments)
                        arguments = f"({arguments[1:-1]}, {extra})" if arguments else f"({extra})"
                    # The subgraph's own type of the field (`join__field(type:)`) when given.
                    type_ref = field_info.type_ref_in(name) if field_info else str(field.type)
                    fields.append(f"  {field_name}{arguments}: {type_ref}")
            interface_object = name in info.interface_object_in
            implements = [] if interface_object else sorted(info.implements_in.get(name, ()))
            keyword = (
                "type"
                if isinstance(graphql_type, GraphQLObjectType) or interface_object
                else "interface"
            )
            head = f"{keyword} {type_name}" + (
                " implements " + " & ".join(implements) if implements else ""
            )
            if type_name == supergraph.query_type:
                query_fields = fields
                continue
            if fields:
                lines.append(head + " {\n" + "\n".join(fields) + "\n}")
            if info.is_entity_in(name) and keyword == "type":
                entities.append(type_name)
        elif isinstance(graphql_type, GraphQLUnionType):
            members = sorted(info.members_in.get(name, ()))
            if members:
                lines.append(f"union {type_name} = " + " | ".join(members))
        elif isinstance(graphql_type, GraphQLEnumType):
            lines.append(f"enum {type_name} {{ " + " ".join(graphql_type.values) + " }")
        elif isinstance(graphql_type, GraphQLInputObjectType):
            inner = " ".join(f"{n}: {f.type}" for n, f in graphql_type.fields.items())
            lines.append(f"input {type_name} {{ {inner} }}")
        elif isinstance(graphql_type, GraphQLScalarType):
            lines.append(f"scalar {type_name}")
    lines.append("scalar _Any")
    if entities:
        lines.append("union _Entity = " + " | ".join(entities))
        query_fields.append("  _entities(representations: [_Any!]!): [_Entity]!")
    query_fields.append("  _service: String")
    lines.append(f"type {supergraph.query_type} {{\n" + "\n".join(query_fields) + "\n}")
    return "\n\n".join(lines)


@dataclass
class FakeSubgraph:
    """A subgraph's schema, resolvers and the requests it received."""

    name: str
    schema: GraphQLSchema
    resolvers: dict[str, Resolver] = field(default_factory=dict)  # "Type.field" -> resolver
    references: dict[str, ReferenceResolver] = field(default_factory=dict)  # type -> resolver
    requests: list[dict[str, Any]] = field(default_factory=list)
    delay_seconds: float = 0.0
    fail_with_status: int | None = None

    def __post_init__(self) -> None:
        for type_name, graphql_type in self.schema.type_map.items():
            if isinstance(graphql_type, GraphQLInterfaceType | GraphQLUnionType):
                graphql_type.resolve_type = lambda value, *_: value["__typename"]
            if isinstance(graphql_type, GraphQLObjectType):
                for field_name, field in graphql_type.fields.items():
                    resolver = self.resolvers.get(f"{type_name}.{field_name}")
                    if resolver is not None:
                        field.resolve = resolver
        query = self.schema.query_type
        if query is not None and "_entities" in query.fields:
            query.fields["_entities"].resolve = self._entities

    def _entities(self, _root: Any, _info: Any, representations: list[dict[str, Any]]) -> list[Any]:
        found = []
        for rep in representations:
            resolve = self.references.get(rep["__typename"])
            entity = resolve(rep) if resolve else None
            if isinstance(entity, dict):
                entity = {"__typename": rep["__typename"], **entity}
            found.append(entity)
        return found

    async def app(
        self,
        scope: dict[str, Any],
        receive: Callable[[], Awaitable[Any]],
        send: Callable[[Any], Awaitable[None]],
    ) -> None:
        if scope["type"] == "lifespan":
            message = await receive()
            while message["type"] != "lifespan.shutdown":
                await send({"type": message["type"] + ".complete"})
                message = await receive()
            await send({"type": "lifespan.shutdown.complete"})
            return
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        payload = orjson.loads(body)
        headers = {k.decode().lower(): v.decode() for k, v in scope["headers"]}
        self.requests.append({"payload": payload, "headers": headers})
        if self.delay_seconds:
            await asyncio.sleep(self.delay_seconds)
        if self.fail_with_status is not None:
            await _respond(send, self.fail_with_status, b"upstream broken")
            return
        result = await graphql(
            self.schema,
            payload["query"],
            variable_values=payload.get("variables"),
            context_value=headers,
        )
        answer: dict[str, Any] = {"data": result.data}
        if result.errors:
            answer["errors"] = [e.formatted for e in result.errors]
        await _respond(send, 200, orjson.dumps(answer))


async def _respond(send: Callable[[Any], Awaitable[None]], status: int, body: bytes) -> None:
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/json"),
                (b"content-length", str(len(body)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": body})


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def serve(app: Any, port: int | None = None) -> Iterator[str]:
    """Serve an ASGI app on 127.0.0.1 in a background thread; yields its base URL."""
    port = port or free_port()
    server = uvicorn.Server(
        uvicorn.Config(
            app, host="127.0.0.1", port=port, log_level="warning", lifespan="on", interface="asgi3"
        )
    )
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("test server did not start")
        time.sleep(0.01)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)


def make_subgraph(
    supergraph: Supergraph,
    name: str,
    resolvers: dict[str, Resolver] | None = None,
    references: dict[str, ReferenceResolver] | None = None,
) -> FakeSubgraph:
    api = build_schema(supergraph.api_sdl)
    schema = build_schema(subgraph_sdl(supergraph, name, api))
    return FakeSubgraph(name, schema, dict(resolvers or {}), dict(references or {}))
