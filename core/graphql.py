"""How GraphQL errors reach clients, shared by every subgraph.

A `UnityPlanError` keeps its message and `extensions` (code, field, reason, retryAfter); request
errors found before execution get GRAPHQL_PARSE_FAILED, GRAPHQL_VALIDATION_FAILED or
BAD_USER_INPUT; anything else becomes "Internal server error", the real error going only to the
server log (with the trace id).
"""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator, Iterable, Iterator
from typing import Any

import strawberry.federation
from graphql import ExecutionResult as GraphQLExecutionResult
from graphql import GraphQLError
from strawberry.extensions import SchemaExtension
from strawberry.types import ExecutionContext
from strawberry.types.execution import ExecutionResult as StrawberryExecutionResult

from core.errors import ErrorCode, ServiceUnavailable, UnityPlanError, is_outage
from core.events.timing import TIMING_EXTENSION, take_answer_timing
from core.observability.operations import RootFieldOutcomes

logger = logging.getLogger("unityplan.graphql")

GRAPHQL_PARSE_FAILED = "GRAPHQL_PARSE_FAILED"
GRAPHQL_VALIDATION_FAILED = "GRAPHQL_VALIDATION_FAILED"
INTERNAL_MESSAGE = "Internal server error"

_VARIABLE_ERROR_PREFIX = "Variable '$"


def is_expected(error: GraphQLError) -> bool:
    """Whether the client may see `error` as it is (and the server need not log it)."""
    original = error.original_error
    if original is None or isinstance(original, UnityPlanError | GraphQLError):
        return True
    if is_outage(original):
        return True  # SERVICE_UNAVAILABLE; logged as one line by `log_unexpected_errors`
    # Variable values a client sent that failed coercion, a custom scalar's ValueError included.
    return error.path is None and error.message.startswith(_VARIABLE_ERROR_PREFIX)


def _request_error_code(error: GraphQLError) -> str:
    if error.message.startswith(_VARIABLE_ERROR_PREFIX):
        return ErrorCode.BAD_USER_INPUT.value
    if error.message.startswith("Syntax Error"):
        return GRAPHQL_PARSE_FAILED
    return GRAPHQL_VALIDATION_FAILED


def _located(error: GraphQLError, message: str, extensions: dict[str, Any]) -> GraphQLError:
    return GraphQLError(
        message,
        nodes=error.nodes,
        source=error.source,
        positions=error.positions,
        path=error.path,
        original_error=None,
        extensions=extensions,
    )


def format_error(error: GraphQLError) -> GraphQLError:
    """The client's view of `error` (see the module docstring for the policy)."""
    original = error.original_error
    if isinstance(original, UnityPlanError):
        return _located(error, original.message, original.graphql_extensions())
    if original is not None and is_outage(original):
        outage = ServiceUnavailable()
        return _located(error, outage.message, outage.graphql_extensions())
    if not is_expected(error):
        return _located(error, INTERNAL_MESSAGE, {"code": ErrorCode.INTERNAL_SERVER_ERROR.value})
    extensions = dict(error.extensions or {})
    if error.path is None:
        code = extensions.get("code") or _request_error_code(error)
    else:
        # A GraphQLError raised on purpose during execution: written for clients already.
        code = extensions.get("code") or ErrorCode.BAD_USER_INPUT.value
    return _located(error, error.message, {**extensions, "code": code})


def log_unexpected_errors(
    errors: Iterable[GraphQLError], execution_context: ExecutionContext | None = None
) -> None:
    """Log, with traceback, every error the client will only see as an internal error."""
    operation = execution_context.operation_name if execution_context else None
    for error in errors:
        if error.original_error is not None and is_outage(error.original_error):
            logger.warning(
                "GraphQL operation %s: a dependency is unavailable (%s)",
                operation or "(anonymous)",
                type(error.original_error).__name__,
            )
            continue
        if is_expected(error):
            continue
        original = error.original_error
        assert original is not None  # an unexpected error always wraps an exception
        # Variables are not logged: they may hold passwords and tokens.
        logger.error(
            "GraphQL operation %s failed at %s: %s",
            operation or "(anonymous)",
            ".".join(str(part) for part in error.path or ()) or "(request)",
            type(original).__name__,
            exc_info=(type(original), original, original.__traceback__),
            extra={"operation": operation},
        )


def _format_result_errors(result: Any) -> None:
    errors = getattr(result, "errors", None)
    if errors:
        result.errors = [error if _is_formatted(error) else format_error(error) for error in errors]


def _is_formatted(error: GraphQLError) -> bool:
    return error.original_error is None and "code" in (error.extensions or {})


async def _formatted_stream(results: AsyncGenerator[Any, None]) -> AsyncGenerator[Any, None]:
    try:
        async for result in results:
            _format_result_errors(result)
            yield result
    finally:
        await results.aclose()


class UnityPlanErrors(SchemaExtension):
    """Rewrites the operation's errors into what clients may see (logging is `process_errors`)."""

    def on_operation(self) -> Iterator[None]:
        yield
        result = self.execution_context.result
        if isinstance(result, GraphQLExecutionResult | StrawberryExecutionResult) and result.errors:
            result.errors = [format_error(error) for error in result.errors]


class EventTiming(SchemaExtension):
    """Each answer of a subscription to an event carries the event's timestamps per hop
    (`extensions.eventTiming`, see `core.events.timing`): only the router reads them."""

    def get_results(self) -> dict[str, Any]:
        timing = take_answer_timing()
        return {TIMING_EXTENSION: timing} if timing is not None else {}


class FederationSchema(strawberry.federation.Schema):
    """A federation schema with the platform's error policy: pass everything as usual."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        # Outcomes are counted before the errors are rewritten: they still hold the originals.
        kwargs["extensions"] = [
            *kwargs.get("extensions", ()),
            RootFieldOutcomes,
            UnityPlanErrors,
            EventTiming,
        ]
        super().__init__(*args, **kwargs)

    async def stream(self, *args: Any, **kwargs: Any) -> Any:
        # Each event of a subscription is its own result, outside the operation hooks the
        # `UnityPlanErrors` extension runs in: apply the same policy to every one of them.
        results = await super().stream(*args, **kwargs)
        if isinstance(results, AsyncGenerator):
            return _formatted_stream(results)
        _format_result_errors(results)
        return results

    def process_errors(
        self, errors: list[GraphQLError], execution_context: ExecutionContext | None = None
    ) -> None:
        # Strawberry's default logs every error, expected ones too, each with a traceback.
        log_unexpected_errors(errors, execution_context)
