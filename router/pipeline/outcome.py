"""What the operation pipeline answers: a refusal from a named stage, one result, an
incremental (`@defer`) result, or a stream of results. Each door only translates these."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from router.execution.incremental import Incremental


# Seconds a client is asked to wait before retrying after an outage.
RETRY_AFTER_SECONDS = 5


class Stage(StrEnum):
    """The pipeline stage that refused an operation (it decides the HTTP status)."""

    REQUEST = "request"  # not a well-formed GraphQL request
    AUTHENTICATION = "authentication"  # a bad, expired or revoked token
    DOCUMENT = "document"  # persisted queries / trusted documents
    PARSE = "parse"
    LIMIT = "limit"  # depth, aliases, root fields, tokens, cost, directives
    VALIDATION = "validation"
    METHOD = "method"  # an operation type this HTTP method may not carry
    POLICY = "policy"  # introspection rights, operation types of a door
    PLANNING = "planning"
    VARIABLES = "variables"
    UNAVAILABLE = "unavailable"  # no supergraph yet, shutting down, a dependency is down


class Refused(Exception):
    """The operation does not run; no subgraph was called. Raised inside the pipeline and
    returned as its outcome (and cached with the document when the document decides it)."""

    def __init__(
        self,
        stage: Stage,
        errors: list[dict[str, Any]],
        *,
        operation_kind: str | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(str(errors[0].get("message")) if errors else stage.value)
        self.stage = stage
        self.errors = errors
        # The operation's type when the document could be parsed (GET rules need it even when
        # validation failed).
        self.operation_kind = operation_kind
        self.headers = headers or {}

    @classmethod
    def of(cls, stage: Stage, message: str, code: str, **more: Any) -> Refused:
        extensions = {"code": code, **more.pop("extensions", {})}
        return cls(stage, [{"message": message, "extensions": extensions}], **more)

    def __repr__(self) -> str:
        return f"Refused({self.stage.value}, {self.errors!r})"


@dataclass(frozen=True, slots=True)
class Answered:
    """One complete result (`data` and maybe `errors`); may be shared by identical requests."""

    response: dict[str, Any]


@dataclass(frozen=True, slots=True)
class Deferred:
    """A `@defer` query answered in several payloads."""

    incremental: Incremental


@dataclass(frozen=True, slots=True)
class Streaming:
    """A subscription: JSON-encoded results, one per event."""

    events: AsyncIterator[bytes]


Outcome = Refused | Answered | Deferred | Streaming
