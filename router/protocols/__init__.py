"""The router's client-facing protocols: GraphQL over HTTP (GET, POST, batches, uploads,
`@defer`), graphql-transport-ws and subscriptions-transport-ws, GraphQL over SSE and multipart
HTTP subscriptions. Each reads requests and writes the pipeline's outcomes in its wire format."""

from router.pipeline.request import OperationRequest
from router.protocols.http import (
    GRAPHQL_RESPONSE_JSON,
    HttpProblem,
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
