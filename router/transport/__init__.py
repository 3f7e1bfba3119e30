"""GraphQL over HTTP: reading requests and writing responses, independent of any server."""

from router.transport.http import (
    GRAPHQL_RESPONSE_JSON,
    HttpProblem,
    OperationRequest,
    negotiate,
    read_get,
    read_post,
)

__all__ = [
    "GRAPHQL_RESPONSE_JSON",
    "HttpProblem",
    "OperationRequest",
    "negotiate",
    "read_get",
    "read_post",
]
