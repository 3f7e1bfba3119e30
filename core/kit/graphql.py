"""A subgraph's GraphQL endpoint: strawberry's Litestar controller (HTTP GET and POST, and
WebSocket subscriptions) with its dependencies declared the way Litestar reads them from 3.0
on: by name and type, never inferred.

strawberry's own controller declares them untyped, which Litestar 2 warns about on every app it
builds; this one keeps its behaviour (the same handlers, context merging and sub-response).
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Sequence
from typing import Any, ClassVar

from litestar import Request, Response, WebSocket, get, post, websocket
from litestar.background_tasks import BackgroundTasks
from litestar.connection import ASGIConnection
from litestar.di import NamedDependency, Provide
from litestar.exceptions import NotFoundException, ValidationException
from litestar.status_codes import HTTP_200_OK
from litestar.types import Dependencies
from strawberry.litestar import BaseContext, make_graphql_controller
from strawberry.litestar.controller import GraphQLController, GraphQLResource
from strawberry.schema import BaseSchema
from strawberry.subscriptions import GRAPHQL_TRANSPORT_WS_PROTOCOL, GRAPHQL_WS_PROTOCOL

# The connection a context is built from: the HTTP request, or the WebSocket of a subscription.
Connection = ASGIConnection[Any, Any, Any, Any]
ContextGetter = Callable[..., Awaitable[BaseContext | None]]


async def _no_context() -> None:
    return None


async def _no_root_value() -> None:
    return None


def _sub_response() -> Response[Any]:
    # The response whose headers and cookies resolvers may set (strawberry copies them over).
    return Response({}, background=BackgroundTasks([]))


# The context getter's answer is typed Any: Litestar would otherwise validate (and reject) the
# subgraph's own BaseContext subclass against BaseContext.
async def _http_context(
    custom_context: NamedDependency[Any],
    response: NamedDependency[Response[Any]],
    request: Request[Any, Any, Any],
) -> BaseContext:
    context: BaseContext = custom_context if custom_context is not None else BaseContext()
    context.request = request
    context.response = response
    return context


async def _websocket_context(
    custom_context: NamedDependency[Any], socket: WebSocket[Any, Any, Any]
) -> BaseContext:
    context: BaseContext = custom_context if custom_context is not None else BaseContext()
    context.websocket = socket
    return context


def graphql_controller(
    schema: BaseSchema,
    *,
    context_getter: ContextGetter | None = None,
    path: str = "/graphql",
    graphql_ide: bool = True,
    allow_queries_via_get: bool = True,
    multipart_uploads_enabled: bool = False,
    subscription_protocols: Sequence[str] = (
        GRAPHQL_TRANSPORT_WS_PROTOCOL,
        GRAPHQL_WS_PROTOCOL,
    ),
) -> type[GraphQLController]:
    """The controller serving `schema` at `path`.

    `context_getter` builds the request's context from the connection: it takes a parameter
    `request: Connection` (an HTTP request or a WebSocket) and returns a strawberry
    `BaseContext` (None gives a bare one). GraphiQL is served on GET when `graphql_ide`.
    """
    base = make_graphql_controller(
        schema,
        path=path,
        graphql_ide="graphiql" if graphql_ide else None,
        allow_queries_via_get=allow_queries_via_get,
        subscription_protocols=subscription_protocols,
        multipart_uploads_enabled=multipart_uploads_enabled,
    )

    class SubgraphGraphQL(base):  # type: ignore[misc, valid-type]
        dependencies: ClassVar[Dependencies] = {
            "custom_context": Provide(context_getter or _no_context),
            "context": Provide(_http_context),
            "context_ws": Provide(_websocket_context),
            "root_value": Provide(_no_root_value),
            "response": Provide(_sub_response, sync_to_thread=False),
        }

        @get(raises=[ValidationException, NotFoundException])
        async def handle_http_get(
            self,
            request: Request[Any, Any, Any],
            context: NamedDependency[Any],
            root_value: NamedDependency[Any],
            response: NamedDependency[Response[Any]],
        ) -> Response[GraphQLResource | str]:
            self.temporal_response = response
            answer: Response[GraphQLResource | str] = await self.execute_request(
                request=request, context=context, root_value=root_value
            )
            return answer

        @post(status_code=HTTP_200_OK)
        async def handle_http_post(
            self,
            request: Request[Any, Any, Any],
            context: NamedDependency[Any],
            root_value: NamedDependency[Any],
            response: NamedDependency[Response[Any]],
        ) -> Response[GraphQLResource | str]:
            self.temporal_response = response
            answer: Response[GraphQLResource | str] = await self.execute_request(
                request=request, context=context, root_value=root_value
            )
            return answer

        @websocket()
        async def websocket_endpoint(
            self,
            socket: WebSocket[Any, Any, Any],
            context_ws: NamedDependency[Any],
            root_value: NamedDependency[Any],
        ) -> None:
            await self.run(request=socket, context=context_ws, root_value=root_value)

    return SubgraphGraphQL
