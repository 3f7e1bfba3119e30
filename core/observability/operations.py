"""GraphQL traffic by root field: outcomes of queries and mutations, and open subscriptions.

`graphql_root_fields_total{operation, field, outcome, reason}`: `outcome` is `ok` or the error
code a client saw (`INVALID_CREDENTIALS`, `RATE_LIMITED`, ...), `reason` the error's `reason`
extension (`REUSED` for a replayed refresh token). `graphql_active_subscriptions{field}`: the
subscriptions being served. Field names come from the schema and codes from `ErrorCode`, so the
label values stay bounded; aliases never become labels.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from weakref import WeakKeyDictionary

from graphql import DocumentNode, GraphQLError, OperationDefinitionNode
from graphql.language import FieldNode
from prometheus_client import CollectorRegistry, Counter, Gauge
from strawberry.extensions import SchemaExtension

from core.errors import ErrorCode, UnityPlanError

OK = "ok"
_COUNTERS: WeakKeyDictionary[CollectorRegistry, Counter] = WeakKeyDictionary()
_GAUGES: WeakKeyDictionary[CollectorRegistry, Gauge] = WeakKeyDictionary()


def root_fields_counter(registry: CollectorRegistry) -> Counter:
    """`graphql_root_fields_total` on `registry`, registered once."""
    counter = _COUNTERS.get(registry)
    if counter is None:
        counter = Counter(
            "graphql_root_fields",
            "Root fields of GraphQL queries and mutations, by outcome (ok or error code)",
            ["operation", "field", "outcome", "reason"],
            registry=registry,
        )
        _COUNTERS[registry] = counter
    return counter


def active_subscriptions_gauge(registry: CollectorRegistry) -> Gauge:
    """`graphql_active_subscriptions` on `registry`, registered once."""
    gauge = _GAUGES.get(registry)
    if gauge is None:
        gauge = Gauge(
            "graphql_active_subscriptions",
            "GraphQL subscriptions being served, by root field",
            ["field"],
            registry=registry,
        )
        _GAUGES[registry] = gauge
    return gauge


def _subscription_fields(schema: object) -> list[str]:
    """Root subscription fields of a strawberry schema (its graphql-core schema's)."""
    subscription = getattr(getattr(schema, "_schema", None), "subscription_type", None)
    return sorted(getattr(subscription, "fields", None) or ())


def _registry_of(context: Any) -> CollectorRegistry | None:
    """The service's registry, reached through the Litestar request of the GraphQL context
    (the WebSocket's, for subscriptions)."""
    request = getattr(context, "request", None) or getattr(context, "websocket", None)
    metrics = getattr(getattr(getattr(request, "app", None), "state", None), "metrics", None)
    registry = getattr(metrics, "registry", None)
    return registry if isinstance(registry, CollectorRegistry) else None


def _error_labels(error: GraphQLError) -> tuple[str, str]:
    original = error.original_error
    if isinstance(original, UnityPlanError):
        reason = original.extensions.get("reason")
        return original.code.value, reason if isinstance(reason, str) else ""
    code = (error.extensions or {}).get("code")
    if isinstance(code, str):
        return code, ""
    return ErrorCode.INTERNAL_SERVER_ERROR.value, ""


def _operation_definition(
    document: DocumentNode | None, name: str | None
) -> OperationDefinitionNode | None:
    operations = [
        d
        for d in (document.definitions if document else ())
        if isinstance(d, OperationDefinitionNode)
    ]
    for definition in operations:
        if name is None or (definition.name is not None and definition.name.value == name):
            return definition
    return None


def _root_fields(definition: OperationDefinitionNode) -> dict[str, str]:
    """Response key (alias or name) -> field name of the operation's root selections."""
    return {
        (node.alias or node.name).value: node.name.value
        for node in definition.selection_set.selections
        if isinstance(node, FieldNode)
    }


class RootFieldOutcomes(SchemaExtension):
    """Counts each root field of an executed query or mutation once, with its outcome, and
    keeps the gauge of subscriptions for as long as each one runs."""

    _subscribed: tuple[Gauge, str] | None = None

    def on_operation(self) -> Iterator[None]:
        # For a subscription the operation lasts until the client or the server ends it.
        try:
            yield
        finally:
            if self._subscribed is not None:
                gauge, field = self._subscribed
                gauge.labels(field).dec()
                self._subscribed = None

    def on_execute(self) -> Iterator[None]:
        yield
        context = self.execution_context
        registry = _registry_of(context.context)
        if registry is None:
            return
        gauge = active_subscriptions_gauge(registry)
        for field in _subscription_fields(context.schema):
            gauge.labels(field)  # every field has a series from the first operation on, at 0
        definition = _operation_definition(context.graphql_document, context.operation_name)
        if definition is None:
            return
        operation = definition.operation.value
        fields = _root_fields(definition)
        if operation == "subscription":
            if fields:  # a subscription has exactly one root field
                field = next(iter(fields.values()))
                gauge.labels(field).inc()
                self._subscribed = (gauge, field)
            return
        result = context.result
        if result is None or operation not in {"query", "mutation"}:
            return
        outcomes: dict[str, tuple[str, str]] = dict.fromkeys(fields, (OK, ""))
        for error in getattr(result, "errors", None) or ():
            path = error.path or ()
            if path and path[0] in outcomes and outcomes[path[0]][0] == OK:
                outcomes[str(path[0])] = _error_labels(error)
        counter = root_fields_counter(registry)
        for key, (outcome, reason) in outcomes.items():
            if fields[key].startswith("__"):
                continue  # introspection is tooling, not traffic
            counter.labels(operation, fields[key], outcome, reason).inc()
