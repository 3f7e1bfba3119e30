"""The GraphQL-over-HTTP rules: request parameters from GET and POST, media type negotiation,
and the one mapping from a pipeline outcome to an HTTP status."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any
from urllib.parse import parse_qs

import orjson

from router.pipeline.outcome import Refused, Stage
from router.pipeline.request import OperationRequest, operation_request

GRAPHQL_RESPONSE_JSON = "application/graphql-response+json"
JSON = "application/json"

# The code of a refusal that is about the HTTP request itself, by status.
_STATUS_CODES = {
    400: "BAD_REQUEST",
    401: "UNAUTHENTICATED",
    404: "NOT_FOUND",
    405: "METHOD_NOT_ALLOWED",
    406: "NOT_ACCEPTABLE",
    413: "PAYLOAD_TOO_LARGE",
    415: "UNSUPPORTED_MEDIA_TYPE",
    429: "RATE_LIMITED",
    503: "SERVICE_UNAVAILABLE",
}


class HttpProblem(Exception):
    """A request that is not a well-formed GraphQL-over-HTTP request (status and message)."""

    def __init__(
        self,
        status: int,
        message: str,
        headers: dict[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.headers = headers or {}
        self.code = code or _STATUS_CODES.get(status, "BAD_REQUEST")

    def body(self) -> bytes:
        return orjson.dumps(
            {"errors": [{"message": self.message, "extensions": {"code": self.code}}]}
        )


def status_of(refused: Refused, media_type: str) -> int:
    """The HTTP status of a refused operation. With `application/graphql-response+json` a
    request that cannot execute is a 4xx (5xx when the router fails); legacy
    `application/json` clients get 200 with the errors, as the GraphQL-over-HTTP spec says.
    Method and availability refusals are the same for both."""
    if refused.stage is Stage.METHOD:
        return 405
    if refused.stage is Stage.UNAVAILABLE:
        return 503
    if media_type != GRAPHQL_RESPONSE_JSON:
        return 200
    if refused.stage is Stage.AUTHENTICATION:
        return 401
    if refused.stage is Stage.PLANNING:
        return 500
    return 400


# Errors that mean a subgraph or its dependency is down, not that the request was wrong.
OUTAGE_CODES = frozenset({"SERVICE_UNAVAILABLE", "SUBREQUEST_HTTP_ERROR", "GATEWAY_TIMEOUT"})


def answered_status(response: Mapping[str, Any]) -> int:
    """The HTTP status of an executed operation: 503 when no data could be produced because
    what it needed is down (every error an outage), else 200."""
    if response.get("data") is not None:
        return 200
    errors = response.get("errors") or ()
    codes = {(e.get("extensions") or {}).get("code") for e in errors if isinstance(e, dict)}
    return 503 if codes and codes <= OUTAGE_CODES else 200


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


def http_operation(params: Any) -> OperationRequest:
    """The operation of decoded request parameters (a JSON body, URL parameters, or multipart
    `operations`); a malformed one is a 400."""
    try:
        return operation_request(params)
    except Refused as refused:
        raise HttpProblem(400, str(refused.errors[0]["message"])) from None


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
        return [http_operation(p) for p in params]
    return http_operation(params)


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
    return http_operation(
        {
            "query": params.get("query"),
            "operationName": params.get("operationName"),
            "variables": _json_param(params.get("variables"), "variables"),
            "extensions": _json_param(params.get("extensions"), "extensions"),
        }
    )
