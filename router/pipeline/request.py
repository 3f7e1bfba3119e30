"""A GraphQL request's parameters (`query`, `operationName`, `variables`, `extensions`), read
the same way from a JSON body, URL parameters, a multipart form or a WebSocket message."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from router.pipeline.outcome import Refused, Stage

# JSON deeper than this is no GraphQL input any schema here describes; orjson (and most
# encoders) stop at 255 levels, so deeper values must be refused before anything re-encodes them.
MAX_JSON_DEPTH = 100


@dataclass(frozen=True, slots=True)
class OperationRequest:
    query: str
    operation_name: str | None
    variables: dict[str, Any] | None
    extensions: dict[str, Any] | None


def bad_request(message: str) -> Refused:
    return Refused.of(Stage.REQUEST, message, "BAD_REQUEST")


def json_depth_over(value: Any, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether `value` nests objects and lists more than `limit` levels (iterative: a hostile
    value must not exhaust the stack)."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, dict):
            children: Any = item.values()
        elif isinstance(item, list):
            children = item
        else:
            continue
        if depth > limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False


def operation_request(params: Any) -> OperationRequest:
    """The operation of decoded request parameters; `Refused` (stage REQUEST) when they are
    not a GraphQL request."""
    if not isinstance(params, dict):
        raise bad_request("A GraphQL request must be a JSON object")
    extensions = params.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise bad_request("`extensions` must be an object")
    query = params.get("query")
    if query is None and extensions and "persistedQuery" in extensions:
        query = ""  # a persisted document, looked up by its hash at the edge
    elif not isinstance(query, str) or not query.strip():
        raise bad_request("The request has no GraphQL document in `query`")
    name = params.get("operationName")
    if name is not None and not isinstance(name, str):
        raise bad_request("`operationName` must be a string")
    variables = params.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise bad_request("`variables` must be an object")
    for field, value in (("variables", variables), ("extensions", extensions)):
        if json_depth_over(value):
            raise bad_request(f"`{field}` are nested more than {MAX_JSON_DEPTH} levels deep")
    return OperationRequest(query, name or None, variables, extensions)
