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
    # A dependency (database, Redis) is down: nothing was changed, retry after `retryAfter`.
    SERVICE_UNAVAILABLE = "SERVICE_UNAVAILABLE"
    # The router's outage codes, also with `retryAfter`: a subgraph could not be reached (or
    # gave no GraphQL answer), or did not answer within its timeout. A write that got either
    # may or may not have happened: send it again (the platform's writes are idempotent).
    SUBREQUEST_HTTP_ERROR = "SUBREQUEST_HTTP_ERROR"
    GATEWAY_TIMEOUT = "GATEWAY_TIMEOUT"
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


SIGN_IN_UNAVAILABLE = "Sign-in cannot be checked right now, try again"


class ServiceUnavailable(UnityPlanError):
    code = ErrorCode.SERVICE_UNAVAILABLE
    default_message = "The service cannot do this right now; nothing was changed, try again"

    def __init__(self, message: str | None = None, *, retry_after: int = 5, **extensions: Any):
        super().__init__(message, retryAfter=max(1, int(retry_after)), **extensions)


class ConfigError(Exception):
    """Invalid configuration, found at start-up; the message names the variable."""


class InfrastructureError(Exception):
    """A dependency (PostgreSQL, NATS, Redis, an embedded server) could not be used."""


def is_outage(error: BaseException) -> bool:
    """Whether `error` says a dependency is down (Redis, PostgreSQL unreachable, restarting or
    dropping connections), which a client should hear as SERVICE_UNAVAILABLE and retry."""
    from asyncpg.exceptions import CannotConnectNowError, ConnectionDoesNotExistError
    from redis.exceptions import ConnectionError as RedisConnectionError
    from redis.exceptions import RedisError
    from redis.exceptions import TimeoutError as RedisTimeoutError
    from sqlalchemy.exc import DBAPIError, InterfaceError, OperationalError

    seen: BaseException | None = error
    for _ in range(5):  # the cause chain: SQLAlchemy wraps the driver's error
        if seen is None:
            return False
        if isinstance(seen, RedisConnectionError | RedisTimeoutError) or (
            isinstance(seen, RedisError) and "loading" in str(seen).lower()
        ):
            return True
        if isinstance(seen, CannotConnectNowError | ConnectionDoesNotExistError | ConnectionError):
            return True
        if isinstance(seen, OperationalError | InterfaceError) or (
            isinstance(seen, DBAPIError) and seen.connection_invalidated
        ):
            return True
        if type(seen).__name__ in _OUTAGE_NAMES:
            return True
        seen = seen.__cause__ or seen.__context__
    return False


# Driver errors of a PostgreSQL that is shutting down or restarting ("the database system is
# shutting down", admin shutdown), known by name to stay independent of driver internals.
_OUTAGE_NAMES = frozenset({"AdminShutdownError", "CrashShutdownError", "TooManyConnectionsError"})
