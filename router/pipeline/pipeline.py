"""The operation pipeline: every door (HTTP GET and POST, batches, uploads, `@defer`,
graphql-transport-ws, subscriptions-transport-ws, SSE, multipart subscriptions) runs each
operation through these stages, in this order, and only translates the outcome:

    authenticate (once per request or connection)
    -> resolve the document (persisted queries, trusted documents)
    -> parse once under the token limit -> limits -> validate -> plan   (cached per document)
    -> method rule (GET carries queries only) -> policy (introspection, operation types)
    -> coerce variables -> execute, stream, or answer incrementally.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable, Mapping
from dataclasses import dataclass, field
from enum import StrEnum
from functools import partial
from typing import Any

from prometheus_client import Gauge
from redis.exceptions import RedisError

from core.errors import Unauthenticated
from core.security import Principal
from router.edge.guard import Edge
from router.edge.persisted import PersistedQueryError
from router.execution.gateway import Gateway
from router.execution.incremental import Incremental
from router.pipeline.document import PreparedOperation
from router.pipeline.inflight import InflightQueries, query_key
from router.pipeline.outcome import (
    RETRY_AFTER_SECONDS,
    Answered,
    Deferred,
    Outcome,
    Refused,
    Stage,
    Streaming,
)
from router.pipeline.request import OperationRequest, bad_request
from router.planning.defer import defer_switches, has_defer
from router.protocols.http import HttpProblem
from router.subscriptions import SubscriptionService, Viewer

SIGN_IN_UNAVAILABLE = "Sign-in cannot be checked right now, try again"


class Door(StrEnum):
    """Where an operation came in; decides which operation types it may carry."""

    HTTP = "http"  # GET/POST (also batches, uploads and `@defer`)
    WEBSOCKET = "websocket"  # graphql-transport-ws and subscriptions-transport-ws
    SSE = "sse"  # GraphQL over SSE
    MULTIPART = "multipart"  # multipart HTTP subscriptions

    @property
    def streams(self) -> bool:
        return self is not Door.HTTP


@dataclass(frozen=True, slots=True)
class Call:
    """Who asks and how: what every operation of one request or connection shares."""

    door: Door
    # The HTTP method (its rules on operation types); None on a WebSocket.
    method: str | None
    # The client's request headers (the introspection key, the viewer's identity).
    headers: Mapping[str, str]
    # The headers sent on to subgraphs (Authorization, trace context, the client's address).
    forwarded: dict[str, str]
    principal: Principal | None = None
    # On long-lived connections: the watched viewer, whose end ends its subscriptions.
    viewer: Viewer | None = None
    uploads: bool = False
    # The client reads `@defer` payloads as multipart/mixed.
    incremental: bool = False
    on_overflow: Callable[[], None] | None = None


# Refusals of the edge's own rules, counted by reason (router_edge_refusals_total).
_REFUSAL_REASONS = {
    Stage.AUTHENTICATION: "unauthenticated",
    Stage.LIMIT: "operation_limit",
    Stage.DOCUMENT: "persisted_query",
}


def unavailable(message: str) -> Refused:
    return Refused.of(
        Stage.UNAVAILABLE,
        message,
        "SERVICE_UNAVAILABLE",
        extensions={"retryAfter": RETRY_AFTER_SECONDS},
        headers={"retry-after": str(RETRY_AFTER_SECONDS)},
    )


@dataclass
class OperationPipeline:
    """The stages every operation passes; one per router app."""

    gateway: Callable[[], Gateway | None]
    edge: Edge
    subscriptions: SubscriptionService
    inflight: InflightQueries
    draining: bool = field(default=False)
    # `router_active_subscriptions`, when the router's telemetry is wired in.
    active_streams: Gauge | None = None

    # -- authentication (once per request or connection) ---------------------------------------
    async def authenticate(self, authorization: str | None) -> Principal | None:
        """The verified caller of a request (None when anonymous); `Refused`."""
        try:
            return await self.edge.authenticate(authorization)
        except Unauthenticated as refused:
            raise self._refused(
                Refused.of(Stage.AUTHENTICATION, refused.message, "UNAUTHENTICATED")
            ) from None
        except HttpProblem:
            raise unavailable(SIGN_IN_UNAVAILABLE) from None

    async def watch(self, authorization: str | None) -> Viewer | None:
        """The watched viewer of a long-lived connection (None when anonymous); `Refused`.
        Release it with `forget` when the connection ends."""
        try:
            return await self.subscriptions.watch.authenticate(authorization)
        except Unauthenticated as refused:
            raise self._refused(
                Refused.of(Stage.AUTHENTICATION, str(refused), "UNAUTHENTICATED")
            ) from None
        except RedisError:
            # Fail closed: without the revocation registry a signed-out token might pass.
            raise unavailable(SIGN_IN_UNAVAILABLE) from None

    def forget(self, viewer: Viewer | None) -> None:
        if viewer is not None:
            self.subscriptions.watch.forget(viewer)

    # -- one operation -------------------------------------------------------------------------
    async def run(self, request: OperationRequest, call: Call) -> Outcome:
        """The outcome of one operation; never raises for anything the client sent."""
        try:
            return await self._run(request, call)
        except Refused as refused:
            return self._refused(refused)

    async def _run(self, request: OperationRequest, call: Call) -> Outcome:
        gateway = self.gateway()
        if gateway is None:
            raise unavailable("The router has no supergraph yet")
        request = await self._resolve(request)
        switches = defer_switches(request.variables) if has_defer(request.query) else ()
        try:
            prepared = gateway.prepare(request.query, request.operation_name, switches)
        except Refused as refused:
            # GET's rule is about the operation type, known once the document parsed.
            self._method_rule(call, refused.operation_kind)
            raise
        self._method_rule(call, prepared.kind)
        self._policy(call, prepared)
        variables = gateway.coerce_variables(prepared, request.variables)
        if prepared.kind == "subscription":
            if self.draining:
                raise unavailable("The router is shutting down")
            events = self.subscriptions.events(
                gateway, prepared, variables, call.viewer, call.on_overflow
            )
            if self.active_streams is not None:
                events = _counted(events, self.active_streams)
            return Streaming(events)
        if call.incremental and prepared.deferred is not None:
            incremental = Incremental.prepare(
                gateway, prepared, variables, request.variables, call.forwarded
            )
            if incremental is not None:
                return Deferred(incremental)
        execute = partial(
            gateway.execute, prepared, variables, call.forwarded, uploads=call.uploads
        )
        if prepared.kind != "query" or call.uploads:
            return Answered(await execute())
        key = query_key(
            gateway.supergraph.hash,
            request.query,
            request.operation_name,
            request.variables or {},
            call.headers,
            call.forwarded,
        )
        return Answered(await self.inflight.answer(key, execute))

    async def _resolve(self, request: OperationRequest) -> OperationRequest:
        """The document that will run: persisted queries and trusted documents."""
        try:
            request = await self.edge.document(request)
        except PersistedQueryError as refused:
            raise Refused(Stage.DOCUMENT, refused.errors) from None
        if not request.query:
            raise bad_request("The request has no GraphQL document in `query`")
        return request

    @staticmethod
    def _method_rule(call: Call, kind: str | None) -> None:
        if call.method == "GET" and kind not in {"query", None}:
            raise Refused.of(
                Stage.METHOD,
                f"Only queries may use GET; send {kind}s with POST"
                if kind == "mutation"
                else "Only queries may use GET",
                "METHOD_NOT_ALLOWED",
                operation_kind=kind,
                headers={"allow": "POST"},
            )

    def _policy(self, call: Call, prepared: PreparedOperation) -> None:
        if prepared.kind == "subscription" and not call.door.streams:
            raise Refused.of(
                Stage.POLICY,
                "Subscriptions are served over WebSocket (graphql-transport-ws), GraphQL over"
                " SSE (Accept: text/event-stream) or multipart HTTP",
                "OPERATION_NOT_SUPPORTED",
                operation_kind=prepared.kind,
            )
        if prepared.introspection is not None and not self.edge.may_introspect(
            call.principal, call.headers
        ):
            self.edge.refused("introspection")
            raise Refused.of(
                Stage.POLICY,
                "Introspection is not allowed for this caller",
                "INTROSPECTION_DISABLED",
                operation_kind=prepared.kind,
            )

    def _refused(self, refused: Refused) -> Refused:
        reason = _REFUSAL_REASONS.get(refused.stage)
        if reason is not None:
            self.edge.refused(reason)
        return refused


async def _counted(events: AsyncIterator[bytes], gauge: Gauge) -> AsyncIterator[bytes]:
    """`events`, counted in `gauge` from the first read until the stream ends."""
    gauge.inc()
    try:
        async for event in events:
            yield event
    finally:
        gauge.dec()
        await events.aclose()  # type: ignore[attr-defined]


def forwarded_with(forwarded: Mapping[str, str], authorization: str | None) -> dict[str, str]:
    """Headers for subgraphs with the connection's own `Authorization` (WebSocket clients send
    it in `connection_init`, not as a header)."""
    found: dict[str, Any] = {k: v for k, v in forwarded.items() if k != "authorization"}
    if authorization:
        found["authorization"] = authorization
    return found
