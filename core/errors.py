"""The one error base of the platform: every expected failure carries its GraphQL `extensions.code`.

Messages are written for clients: they never contain SQL, file paths, secrets or stack traces.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any


class ErrorCode(StrEnum):
    UNAUTHENTICATED = "UNAUTHENTICATED"
    FORBIDDEN = "FORBIDDEN"
    BAD_USER_INPUT = "BAD_USER_INPUT"
    NOT_FOUND = "NOT_FOUND"
    CONFLICT = "CONFLICT"
    INVALID_CREDENTIALS = "INVALID_CREDENTIALS"
    INVALID_TOKEN = "INVALID_TOKEN"  # noqa: S105 - an error code, not a secret
    MFA_REQUIRED = "MFA_REQUIRED"
    RATE_LIMITED = "RATE_LIMITED"
    INTERNAL_SERVER_ERROR = "INTERNAL_SERVER_ERROR"


class UnityPlanError(Exception):
    """An expected failure, shown to the client as a GraphQL error with `extensions.code`."""

    code: ErrorCode = ErrorCode.INTERNAL_SERVER_ERROR
    default_message = "Internal server error"

    def __init__(self, message: str | None = None, **extensions: Any) -> None:
        self.message = message or self.default_message
        self.extensions: dict[str, Any] = {k: v for k, v in extensions.items() if v is not None}
        super().__init__(self.message)

    def graphql_extensions(self) -> dict[str, Any]:
        return {"code": self.code.value, **self.extensions}


class Unauthenticated(UnityPlanError):
    code = ErrorCode.UNAUTHENTICATED
    default_message = "Authentication required"


class Forbidden(UnityPlanError):
    code = ErrorCode.FORBIDDEN
    default_message = "Not allowed"


class BadUserInput(UnityPlanError):
    """Invalid argument; `field` names the input field at fault."""

    code = ErrorCode.BAD_USER_INPUT
    default_message = "Invalid input"

    def __init__(self, message: str | None = None, *, field: str | None = None, **extensions: Any):
        super().__init__(message, field=field, **extensions)


class NotFound(UnityPlanError):
    code = ErrorCode.NOT_FOUND
    default_message = "Not found"


class Conflict(UnityPlanError):
    code = ErrorCode.CONFLICT
    default_message = "Already exists"


class InvalidCredentials(UnityPlanError):
    code = ErrorCode.INVALID_CREDENTIALS
    default_message = "Invalid username or password"


class InvalidToken(UnityPlanError):
    """`reason`: UNKNOWN | EXPIRED | REVOKED | USED_UP | EMAIL_MISMATCH | REUSED."""

    code = ErrorCode.INVALID_TOKEN
    default_message = "Invalid token"

    def __init__(self, message: str | None = None, *, reason: str = "UNKNOWN", **extensions: Any):
        super().__init__(message, reason=reason, **extensions)


class MfaRequired(UnityPlanError):
    code = ErrorCode.MFA_REQUIRED
    default_message = "A TOTP or recovery code is required"


class RateLimited(UnityPlanError):
    code = ErrorCode.RATE_LIMITED
    default_message = "Too many attempts, try again later"

    def __init__(self, message: str | None = None, *, retry_after: int, **extensions: Any):
        super().__init__(message, retryAfter=max(1, int(retry_after)), **extensions)


class ConfigError(Exception):
    """Invalid configuration, found at start-up; the message names the variable."""


class InfrastructureError(Exception):
    """A dependency (PostgreSQL, NATS, Redis, an embedded server) could not be used."""
