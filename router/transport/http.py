"""The GraphQL-over-HTTP rules: request parameters from GET and POST, media type negotiation."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from urllib.parse import parse_qs

import orjson

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"


class HttpProblem(Exception):
    """A request that is not a well-formed GraphQL-over-HTTP request (status and message)."""

    def __init__(self, status: int, message: str, headers: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}


@dataclass(frozen=True, slots=True)
class OperationRequest:
    query: str
    operation_name: str | None
    variables: dict[str, Any] | None
    extensions: dict[str, Any] | None


def negotiate(accept: str | None) -> str:
    """The response media type for an Accept header; raises 406 when none is acceptable."""
    if not accept:
        return JSON
    types = [part.split(";")[0].strip().lower() for part in accept.split(",")]
    for media_type in types:
        if media_type == GRAPHQL_RESPONSE_JSON:
            return GRAPHQL_RESPONSE_JSON
        if media_type in {JSON, "application/*", "*/*"}:
            return JSON
    raise HttpProblem(406, f"Responses are {GRAPHQL_RESPONSE_JSON} or {JSON}")


def operation_request(params: Any) -> OperationRequest:
    """The operation of decoded request parameters (a JSON body, or multipart `operations`)."""
    return _operation(params)


def _operation(params: Any) -> OperationRequest:
    if not isinstance(params, dict):
        raise HttpProblem(400, "A GraphQL request must be a JSON object")
    extensions = params.get("extensions")
    if extensions is not None and not isinstance(extensions, dict):
        raise HttpProblem(400, "`extensions` must be an object")
    query = params.get("query")
    if query is None and extensions and "persistedQuery" in extensions:
        query = ""  # a persisted document, looked up by its hash at the edge
    elif not isinstance(query, str) or not query.strip():
        raise HttpProblem(400, "The request has no GraphQL document in `query`")
    name = params.get("operationName")
    if name is not None and not isinstance(name, str):
        raise HttpProblem(400, "`operationName` must be a string")
    variables = params.get("variables")
    if variables is not None and not isinstance(variables, dict):
        raise HttpProblem(400, "`variables` must be an object")
    return OperationRequest(query, name or None, variables, extensions)


def read_post(
    content_type: str | None, body: bytes, *, batching: bool
) -> list[OperationRequest] | OperationRequest:
    """The operation(s) of a POST body; a list only for an (opt-in) batch."""
    media_type = (content_type or "").split(";")[0].strip().lower()
    if media_type != JSON:
        raise HttpProblem(415, "POST bodies must be application/json")
    try:
        params = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise HttpProblem(400, "The request body is not valid JSON") from exc
    if isinstance(params, list):
        if not batching:
            raise HttpProblem(400, "Batched requests are not enabled")
        if not params:
            raise HttpProblem(400, "An empty batch")
        return [_operation(p) for p in params]
    return _operation(params)


def _json_param(raw: str | None, name: str) -> Any:
    if raw is None or raw == "":
        return None
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise HttpProblem(400, f"`{name}` is not valid JSON") from exc


def read_get(query_string: bytes) -> OperationRequest:
    """The operation of a GET request's URL parameters."""
    params = {k: v[0] for k, v in parse_qs(query_string.decode("latin-1")).items()}
    return _operation(
        {
            "query": params.get("query"),
            "operationName": params.get("operationName"),
            "variables": _json_param(params.get("variables"), "variables"),
            "extensions": _json_param(params.get("extensions"), "extensions"),
        }
    )
