"""Settings of every UnityPlan service, grouped by concern, read from the environment and `.env`.

Each group reads its own variables (names are the env names, documented in `.env.example`).
`load_settings()` builds the whole tree; invalid values fail with a message naming the variable.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Annotated, Any, Literal

from dotenv import dotenv_values
from pydantic import AliasChoices, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from core.errors import ConfigError

Environment = Literal["development", "test", "production"]
# Shortest accepted shared secret (a base64url string of 256 random bits has 43 characters).
MIN_SECRET_LENGTH = 32


def _env(name: str) -> AliasChoices:
    return AliasChoices(name)


class _Group(BaseSettings):
    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        case_sensitive=True,
        populate_by_name=False,
    )


class AppSettings(_Group):
    env: Environment = Field("development", validation_alias=_env("APP_ENV"))


class DatabaseSettings(_Group):
    # Empty means "not configured": `unityplan dev` then starts the embedded PostgreSQL.
    url: str = Field("", validation_alias=_env("DATABASE_URL"))
    # NoDecode: the validator below parses the JSON, so bad or empty values name the variable.
    pod_urls: Annotated[dict[str, str], NoDecode] = Field(
        default_factory=dict, validation_alias=_env("POD_DATABASE_URLS")
    )
    default_pod: str = Field("default", validation_alias=_env("DEFAULT_POD_ID"))
    pool_size: int = Field(10, ge=1, le=200, validation_alias=_env("DATABASE_POOL_SIZE"))
    echo: bool = Field(False, validation_alias=_env("DATABASE_ECHO"))
    territory_cache_ttl_seconds: float = Field(
        30.0, ge=0, validation_alias=_env("TERRITORY_CACHE_TTL_SECONDS")
    )

    @field_validator("pod_urls", mode="before")
    @classmethod
    def _decode_pods(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("url")
    @classmethod
    def _async_driver(cls, value: str) -> str:
        return to_asyncpg_url(value) if value else value

    @field_validator("pod_urls")
    @classmethod
    def _async_drivers(cls, value: dict[str, str]) -> dict[str, str]:
        return {pod: to_asyncpg_url(url) for pod, url in value.items()}

    def all_pods(self) -> dict[str, str]:
        """Every pod id with its URL; the default pod is `DATABASE_URL`."""
        pods = dict(self.pod_urls)
        if self.url:
            pods.setdefault(self.default_pod, self.url)
        return pods


class NatsSettings(_Group):
    url: str = Field("", validation_alias=_env("NATS_URL"))
    # Prefix for subjects and stream names, so several stacks (or test runs) can share a server.
    namespace: str = Field("", pattern=r"^[a-z0-9_]*$", validation_alias=_env("EVENTS_NAMESPACE"))
    global_retention_days: int = Field(
        7, ge=1, validation_alias=_env("GLOBAL_EVENTS_RETENTION_DAYS")
    )
    territory_retention_days: int = Field(
        30, ge=1, validation_alias=_env("TERRITORY_EVENTS_RETENTION_DAYS")
    )
    cross_retention_days: int = Field(
        14, ge=1, validation_alias=_env("CROSS_EVENTS_RETENTION_DAYS")
    )
    # The relay is woken by each commit (LISTEN/NOTIFY); it polls at this interval only while
    # it cannot listen, and it is the base of its retry back-off.
    outbox_poll_interval_seconds: float = Field(
        0.5, gt=0, validation_alias=_env("OUTBOX_POLL_INTERVAL_SECONDS")
    )
    # The safety net: every outbox is checked this often for events no notification announced.
    outbox_sweep_seconds: float = Field(30.0, gt=0, validation_alias=_env("OUTBOX_SWEEP_SECONDS"))
    outbox_max_backoff_seconds: float = Field(
        30.0, gt=0, validation_alias=_env("OUTBOX_MAX_BACKOFF_SECONDS")
    )
    # How long JetStream remembers a Nats-Msg-Id: a relay that crashed between publishing and
    # marking an event sent, and republishes it within this window, creates no duplicate.
    duplicate_window_seconds: float = Field(
        600.0, gt=0, validation_alias=_env("EVENTS_DUPLICATE_WINDOW_SECONDS")
    )
    # Published outbox rows are kept this long (for inspection), then the relay deletes them.
    outbox_retention_hours: float = Field(
        24.0, gt=0, validation_alias=_env("OUTBOX_RETENTION_HOURS")
    )


class RedisSettings(_Group):
    url: str = Field("", validation_alias=_env("REDIS_URL"))
    key_prefix: str = Field("", validation_alias=_env("REDIS_KEY_PREFIX"))


class SecuritySettings(_Group):
    jwt_issuer: str = Field("unityplan", validation_alias=_env("JWT_ISSUER"))
    jwt_audience: str = Field("unityplan", validation_alias=_env("JWT_AUDIENCE"))
    jwt_algorithm: Literal["ES256", "RS256"] = Field(
        "ES256", validation_alias=_env("JWT_ALGORITHM")
    )
    # PEM private keys, newest (signing) first; older ones only verify. Empty in development:
    # keys are generated into DEVSTACK_DIR/keys on first run.
    jwt_private_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("JWT_PRIVATE_KEYS")
    )
    access_token_ttl_seconds: int = Field(
        900, ge=60, validation_alias=_env("ACCESS_TOKEN_TTL_SECONDS")
    )
    refresh_token_ttl_seconds: int = Field(
        604800, ge=3600, validation_alias=_env("REFRESH_TOKEN_TTL_SECONDS")
    )
    argon2_memory_kib: int = Field(19456, ge=1024, validation_alias=_env("ARGON2_MEMORY_KIB"))
    argon2_time_cost: int = Field(2, ge=1, validation_alias=_env("ARGON2_TIME_COST"))
    argon2_parallelism: int = Field(1, ge=1, validation_alias=_env("ARGON2_PARALLELISM"))

    # Shared secrets proving that a request to a subgraph comes from the router (an HMAC of the
    # request), comma-separated, newest first: the router signs with the first, subgraphs accept
    # every one (two during a rotation). Empty outside production: generated into
    # DEVSTACK_DIR/keys; production refuses to start without them.
    subgraph_signing_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("SUBGRAPH_SIGNING_KEYS")
    )
    # How old a router signature may be (either way, for clock skew) before a subgraph refuses it.
    subgraph_proof_max_age_seconds: float = Field(
        30.0, gt=0, le=300, validation_alias=_env("SUBGRAPH_PROOF_MAX_AGE_SECONDS")
    )
    # Keys encrypting secrets stored to be read back (TOTP secrets), comma-separated, newest
    # first: new values are encrypted with the first, every one decrypts. Empty outside
    # production: generated into DEVSTACK_DIR/keys; production refuses to start without them.
    data_encryption_keys: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("DATA_ENCRYPTION_KEYS")
    )
    # Proxies (CIDRs, comma-separated) whose X-Forwarded-For the router believes: the client is
    # the right-most address not in these networks. Empty: the connection's peer is the client.
    trusted_proxies: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("TRUSTED_PROXIES")
    )

    @field_validator("jwt_private_keys", mode="before")
    @classmethod
    def _decode_keys(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else []
        return value

    @field_validator(
        "subgraph_signing_keys", "data_encryption_keys", "trusted_proxies", mode="before"
    )
    @classmethod
    def _split_list(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("subgraph_signing_keys", "data_encryption_keys")
    @classmethod
    def _long_enough(cls, value: list[str]) -> list[str]:
        if any(len(key) < MIN_SECRET_LENGTH for key in value):
            raise ValueError(f"every key needs at least {MIN_SECRET_LENGTH} characters")
        return value

    @field_validator("trusted_proxies")
    @classmethod
    def _networks(cls, value: list[str]) -> list[str]:
        for network in value:
            try:
                ipaddress.ip_network(network, strict=False)
            except ValueError as exc:
                raise ValueError(f"{network!r} is not an IP address or CIDR") from exc
        return value


class AuthSettings(_Group):
    """The auth subgraph: refresh races, brute-force limits, account tokens, outgoing mail."""

    # A client that raced two refreshes gets the same new pair within this window.
    refresh_grace_seconds: float = Field(10.0, ge=0, validation_alias=_env("REFRESH_GRACE_SECONDS"))
    login_failures_per_account: int = Field(
        10, ge=1, validation_alias=_env("LOGIN_FAILURES_PER_ACCOUNT")
    )
    login_failures_per_ip: int = Field(100, ge=1, validation_alias=_env("LOGIN_FAILURES_PER_IP"))
    login_failure_window_seconds: int = Field(
        900, ge=1, validation_alias=_env("LOGIN_FAILURE_WINDOW_SECONDS")
    )
    password_reset_ttl_seconds: int = Field(
        1800, ge=60, validation_alias=_env("PASSWORD_RESET_TTL_SECONDS")
    )
    email_verification_ttl_seconds: int = Field(
        86400, ge=60, validation_alias=_env("EMAIL_VERIFICATION_TTL_SECONDS")
    )
    # Empty: mail goes to the dev sink in DEVSTACK_DIR/mail. smtp://user:pass@host:587 or smtps://.
    smtp_url: str = Field("", validation_alias=_env("SMTP_URL"))
    mail_from: str = Field(
        "UnityPlan <no-reply@unityplan.local>", validation_alias=_env("MAIL_FROM")
    )


class UserSettings(_Group):
    """The user subgraph: where avatar images are stored and the address they are served at."""

    # Empty: <DEVSTACK_DIR>/avatars.
    avatar_storage_dir: str = Field("", validation_alias=_env("AVATAR_STORAGE_DIR"))
    # An S3-compatible store instead of the directory: s3+https://KEY:SECRET@host/bucket/prefix
    # (`?region=`; `s3+http://` for a local MinIO). Empty: the directory above.
    avatar_storage_url: str = Field("", validation_alias=_env("AVATAR_STORAGE_URL"))
    # Base of the avatar URLs handed to clients; empty: http://SERVICE_HOST:USER_PORT.
    avatar_public_base_url: str = Field("", validation_alias=_env("AVATAR_PUBLIC_BASE_URL"))


class ObservabilitySettings(_Group):
    otlp_endpoint: str = Field("", validation_alias=_env("OTEL_EXPORTER_OTLP_ENDPOINT"))
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = Field(
        "INFO", validation_alias=_env("LOG_LEVEL")
    )
    log_format: Literal["json", "console"] = Field("json", validation_alias=_env("LOG_FORMAT"))


class DevstackSettings(_Group):
    dir: Path = Field(Path(".devstack"), validation_alias=_env("DEVSTACK_DIR"))
    postgres_port: int = Field(55432, ge=1, le=65535, validation_alias=_env("DEV_POSTGRES_PORT"))
    nats_port: int = Field(54222, ge=1, le=65535, validation_alias=_env("DEV_NATS_PORT"))
    redis_port: int = Field(56379, ge=1, le=65535, validation_alias=_env("DEV_REDIS_PORT"))


# A service named `x` is placed by X_PORT and, a subgraph, found by the router at
# X_SUBGRAPH_URL. The service registry (unityplan.registry) names the services and their default
# ports; these settings hold the values set, for whatever services there are.
_SERVICE_VARIABLE = re.compile(r"^(?P<service>[A-Z][A-Z0-9]*)_(?P<kind>PORT|SUBGRAPH_URL)$")
_PLACEMENTS = {"PORT": "ports", "SUBGRAPH_URL": "urls"}


def _placement_variable(field: str, service: str) -> str:
    kind = next(kind for kind, name in _PLACEMENTS.items() if name == field)
    return f"{service.upper()}_{kind}"


class ServiceSettings(_Group):
    host: str = Field("127.0.0.1", validation_alias=_env("SERVICE_HOST"))
    # Router: serve this supergraph file instead of composing from the subgraphs.
    supergraph_path: str = Field("", validation_alias=_env("SUPERGRAPH_PATH"))
    # By service name: its <NAME>_PORT and <NAME>_SUBGRAPH_URL, those that are set.
    ports: dict[str, Annotated[int, Field(ge=1, le=65535)]] = Field(default_factory=dict)
    urls: dict[str, str] = Field(default_factory=dict)

    def port(self, service: str, default: int | None = None) -> int:
        """The port service `service` listens on: its `<SERVICE>_PORT`, else `default`."""
        port = self.ports.get(service, default)
        if port is None:
            raise ConfigError(f"{service.upper()}_PORT is not set")
        return port

    def subgraph_url(self, name: str, default_port: int | None = None) -> str:
        """Where subgraph `name` is reached: `<NAME>_SUBGRAPH_URL`, else on its port here."""
        return self.urls.get(name) or f"http://{self.host}:{self.port(name, default_port)}/graphql"

    @staticmethod
    def is_placement(variable: str) -> bool:
        """Whether `variable` places a service (`AUTH_PORT`, `USER_SUBGRAPH_URL`, ...)."""
        return _SERVICE_VARIABLE.match(variable) is not None

    @staticmethod
    def placements(variables: Mapping[str, Any]) -> dict[str, dict[str, Any]]:
        """The service placements among `variables`, as the `ports` and `urls` fields take
        them; an empty X_SUBGRAPH_URL is as good as unset."""
        found: dict[str, dict[str, Any]] = {"ports": {}, "urls": {}}
        for variable, value in variables.items():
            match = _SERVICE_VARIABLE.match(variable)
            if match is None or value is None or (match["kind"] == "SUBGRAPH_URL" and not value):
                continue
            found[_PLACEMENTS[match["kind"]]][match["service"].lower()] = value
        return found

    def as_placements(self) -> dict[str, dict[str, Any]]:
        return {"ports": dict(self.ports), "urls": dict(self.urls)}


class RouterSettings(_Group):
    """The federation router: subgraph HTTP, plan cache, supergraph reloading, HTTP options."""

    subgraph_timeout_seconds: float = Field(
        30.0, gt=0, validation_alias=_env("ROUTER_SUBGRAPH_TIMEOUT_SECONDS")
    )
    # Per-subgraph timeouts by subgraph name, JSON: {"reviews": 2.5}.
    subgraph_timeouts: dict[str, float] = Field(
        default_factory=dict, validation_alias=_env("ROUTER_SUBGRAPH_TIMEOUTS")
    )
    # Subgraph URLs by subgraph name, JSON, overriding the supergraph's `join__graph(url:)`.
    subgraph_urls: dict[str, str] = Field(
        default_factory=dict, validation_alias=_env("ROUTER_SUBGRAPH_URLS")
    )
    max_subgraph_connections: int = Field(
        200, ge=1, validation_alias=_env("ROUTER_MAX_SUBGRAPH_CONNECTIONS")
    )
    plan_cache_size: int = Field(1000, ge=1, validation_alias=_env("ROUTER_PLAN_CACHE_SIZE"))
    # Planning bounds: past either, the operation fails with QUERY_PLANNING_FAILED.
    planning_max_options: int = Field(
        200_000, ge=100, validation_alias=_env("ROUTER_PLANNING_MAX_OPTIONS")
    )
    planning_timeout_seconds: float = Field(
        2.0, gt=0, validation_alias=_env("ROUTER_PLANNING_TIMEOUT_SECONDS")
    )
    # Progressive `@override(label:)` labels in force for every request (comma-separated), e.g.
    # `percent(25),beta`; a `percent(N)` label not listed is drawn per request.
    override_labels: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("ROUTER_OVERRIDE_LABELS")
    )
    # Seconds between checks of SUPERGRAPH_PATH for changes (hot reload); 0 disables.
    supergraph_poll_seconds: float = Field(
        1.0, ge=0, validation_alias=_env("ROUTER_SUPERGRAPH_POLL_SECONDS")
    )
    # Opt-in: a JSON array of GraphQL requests in one POST.
    batch_requests: bool = Field(False, validation_alias=_env("ROUTER_BATCH_REQUESTS"))
    max_request_bytes: int = Field(
        1_000_000, ge=1024, validation_alias=_env("ROUTER_MAX_REQUEST_BYTES")
    )
    # Edge: access tokens are verified with the issuer's JWKS (empty URL: where the service
    # registry's token-issuing subgraph publishes it), kept this long and re-fetched on an
    # unknown kid.
    jwks_url: str = Field("", validation_alias=_env("ROUTER_JWKS_URL"))
    jwks_cache_seconds: float = Field(
        300.0, gt=0, validation_alias=_env("ROUTER_JWKS_CACHE_SECONDS")
    )
    # Outside production only: leave token checks to the subgraphs (tests with fake subgraphs).
    # None (`auto`): verify when REDIS_URL is set (revocations live there); always in production.
    verify_tokens: bool | None = Field(None, validation_alias=_env("ROUTER_VERIFY_TOKENS"))
    # Client headers sent on to every subgraph besides Authorization and the trace context,
    # and per subgraph (JSON {"user": ["x-client-version"]}).
    propagate_headers: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: ["accept-language"],
        validation_alias=_env("ROUTER_PROPAGATE_HEADERS"),
    )
    propagate_headers_by_subgraph: dict[str, list[str]] = Field(
        default_factory=dict, validation_alias=_env("ROUTER_PROPAGATE_HEADERS_BY_SUBGRAPH")
    )
    # Operation limits, checked once per document (cached with its plan).
    max_depth: int = Field(12, ge=1, validation_alias=_env("ROUTER_MAX_DEPTH"))
    max_aliases: int = Field(30, ge=0, validation_alias=_env("ROUTER_MAX_ALIASES"))
    max_root_fields: int = Field(20, ge=1, validation_alias=_env("ROUTER_MAX_ROOT_FIELDS"))
    max_tokens: int = Field(5_000, ge=10, validation_alias=_env("ROUTER_MAX_TOKENS"))
    max_cost: int = Field(10_000, ge=1, validation_alias=_env("ROUTER_MAX_COST"))
    max_directives: int = Field(50, ge=1, validation_alias=_env("ROUTER_MAX_DIRECTIVES"))
    max_upload_bytes: int = Field(
        10_000_000, ge=1024, validation_alias=_env("ROUTER_MAX_UPLOAD_BYTES")
    )
    # Introspection in production: only for tokens with this role, or with this key in the
    # `x-introspection-key` header (empty: no key). Elsewhere it is always allowed.
    introspection_role: str = Field("tooling", validation_alias=_env("ROUTER_INTROSPECTION_ROLE"))
    introspection_key: str = Field("", validation_alias=_env("ROUTER_INTROSPECTION_KEY"))
    csrf_prevention: bool = Field(True, validation_alias=_env("ROUTER_CSRF_PREVENTION"))
    # Browser origins allowed by CORS (`*` for any, without credentials); empty: none.
    cors_origins: Annotated[list[str], NoDecode] = Field(
        default_factory=list, validation_alias=_env("ROUTER_CORS_ORIGINS")
    )
    cors_allow_credentials: bool = Field(
        True, validation_alias=_env("ROUTER_CORS_ALLOW_CREDENTIALS")
    )
    # Extra attempts of a query fetch whose subgraph could not be reached (never mutations).
    subgraph_retries: int = Field(1, ge=0, le=5, validation_alias=_env("ROUTER_SUBGRAPH_RETRIES"))
    # Automatic persisted queries (Apollo APQ) kept in Redis for this long; 0 disables APQ.
    apq_ttl_seconds: int = Field(86_400, ge=0, validation_alias=_env("ROUTER_APQ_TTL_SECONDS"))
    # Trusted documents: a JSON manifest {"sha256 hash": "document"}; when set, only these run.
    trusted_documents_path: str = Field("", validation_alias=_env("ROUTER_TRUSTED_DOCUMENTS_PATH"))
    # GraphiQL on GET /graphql for browsers; never served in production.
    graphiql: bool = Field(True, validation_alias=_env("ROUTER_GRAPHIQL"))
    # Identical queries in flight (same document, variables, operation and viewer headers)
    # share one execution; identical subgraph query fetches in flight go out once.
    dedup_queries: bool = Field(True, validation_alias=_env("ROUTER_DEDUP_QUERIES"))
    dedup_subgraph_fetches: bool = Field(
        True, validation_alias=_env("ROUTER_DEDUP_SUBGRAPH_FETCHES")
    )
    # Entity caching in Redis, off unless types are named: JSON {"User": 60} caches User
    # entities for 60 s (per viewer; domain events evict a changed user's entries).
    entity_cache_ttls: dict[str, int] = Field(
        default_factory=dict, validation_alias=_env("ROUTER_ENTITY_CACHE_TTLS")
    )
    # Subscriptions (WebSocket, SSE, multipart HTTP): open connections in total and per
    # client address, events buffered per slow client before it is cut off, keep-alive period,
    # how soon a revoked session ends its streams, and the WebSocket connection_init deadline.
    max_subscription_connections: int = Field(
        10_000, ge=1, validation_alias=_env("ROUTER_MAX_SUBSCRIPTION_CONNECTIONS")
    )
    max_subscription_connections_per_client: int = Field(
        50, ge=1, validation_alias=_env("ROUTER_MAX_SUBSCRIPTION_CONNECTIONS_PER_CLIENT")
    )
    subscription_buffer_events: int = Field(
        100, ge=1, validation_alias=_env("ROUTER_SUBSCRIPTION_BUFFER_EVENTS")
    )
    subscription_keepalive_seconds: float = Field(
        12.0, gt=0, validation_alias=_env("ROUTER_SUBSCRIPTION_KEEPALIVE_SECONDS")
    )
    # permessage-deflate on client WebSockets: off, since compressing every small event once
    # per client costs the router more than it saves on the wire.
    websocket_compression: bool = Field(
        False, validation_alias=_env("ROUTER_WEBSOCKET_COMPRESSION")
    )
    subscription_revocation_check_seconds: float = Field(
        0.5, gt=0, validation_alias=_env("ROUTER_SUBSCRIPTION_REVOCATION_CHECK_SECONDS")
    )
    subscription_init_timeout_seconds: float = Field(
        10.0, gt=0, validation_alias=_env("ROUTER_SUBSCRIPTION_INIT_TIMEOUT_SECONDS")
    )
    # Operations one WebSocket may run at once (each may hold an upstream subscription).
    max_subscriptions_per_connection: int = Field(
        100, ge=1, validation_alias=_env("ROUTER_MAX_SUBSCRIPTIONS_PER_CONNECTION")
    )
    # SSE resumption: how long a dropped SSE stream may be resumed with Last-Event-ID, and
    # how many of its latest events are kept for that (a Redis stream per SSE subscription).
    sse_retention_seconds: float = Field(
        120.0, gt=0, validation_alias=_env("ROUTER_SSE_RETENTION_SECONDS")
    )
    sse_retained_events: int = Field(
        1000, ge=1, validation_alias=_env("ROUTER_SSE_RETAINED_EVENTS")
    )

    @field_validator(
        "subgraph_timeouts",
        "subgraph_urls",
        "propagate_headers_by_subgraph",
        "entity_cache_ttls",
        mode="before",
    )
    @classmethod
    def _decode_json_map(cls, value: Any) -> Any:
        if isinstance(value, str):
            return json.loads(value) if value.strip() else {}
        return value

    @field_validator("propagate_headers", "cors_origins", "override_labels", mode="before")
    @classmethod
    def _split_names(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [part.strip() for part in value.split(",") if part.strip()]
        return value

    @field_validator("verify_tokens", mode="before")
    @classmethod
    def _auto_verification(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().lower() in {"", "auto"}:
            return None
        return value


_GROUPS: dict[str, type[_Group]] = {
    "app": AppSettings,
    "database": DatabaseSettings,
    "nats": NatsSettings,
    "redis": RedisSettings,
    "security": SecuritySettings,
    "auth": AuthSettings,
    "user": UserSettings,
    "observability": ObservabilitySettings,
    "devstack": DevstackSettings,
    "services": ServiceSettings,
    "router": RouterSettings,
}


class Settings:
    """The whole configuration: one attribute per concern."""

    app: AppSettings
    database: DatabaseSettings
    nats: NatsSettings
    redis: RedisSettings
    security: SecuritySettings
    auth: AuthSettings
    user: UserSettings
    observability: ObservabilitySettings
    devstack: DevstackSettings
    services: ServiceSettings
    router: RouterSettings

    def __init__(self, **groups: _Group) -> None:
        for name in _GROUPS:
            setattr(self, name, groups[name])

    @property
    def is_production(self) -> bool:
        return self.app.env == "production"

    def replace(self, **overrides: Any) -> Settings:
        """A copy with some variables changed, given by their env names (`DATABASE_URL=...`)."""
        return load_settings(overrides, base=self)


def _variable_names(group: type[_Group]) -> set[str]:
    names: set[str] = set()
    for field in group.model_fields.values():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            names.update(str(choice) for choice in alias.choices)
    return names


def load_settings(
    overrides: Mapping[str, Any] | None = None, *, base: Settings | None = None
) -> Settings:
    """Build Settings from the environment and `.env`, with `overrides` (env names) on top.

    With `base`, values not overridden are taken from it instead of the environment.
    """
    overrides = dict(overrides or {})
    known = set().union(*(_variable_names(group) for group in _GROUPS.values()))
    unknown = sorted(
        name for name in set(overrides) - known if not ServiceSettings.is_placement(name)
    )
    if unknown:
        raise ConfigError(f"Unknown configuration variable(s): {', '.join(unknown)}")
    groups: dict[str, _Group] = {}
    problems: list[str] = []
    for name, group in _GROUPS.items():
        mine = {k: v for k, v in overrides.items() if k in _variable_names(group)}
        if group is ServiceSettings:
            mine.update(_service_placements(overrides, base))
        try:
            if base is not None:
                current = getattr(base, name)
                groups[name] = group.model_validate({**_as_env(current), **mine})
            else:
                groups[name] = group(**mine)
        except ValidationError as exc:
            for error in exc.errors():
                loc = [str(part) for part in error["loc"]]
                if len(loc) > 1 and loc[0] in _PLACEMENTS.values():
                    loc = [_placement_variable(loc[0], loc[1])]
                variable = ".".join(loc) or name
                problems.append(f"{variable}: {error['msg']}")
    if problems:
        raise ConfigError("Invalid configuration: " + "; ".join(problems))
    return Settings(**groups)


def _service_placements(
    overrides: Mapping[str, Any], base: Settings | None
) -> dict[str, dict[str, Any]]:
    """Every service's port and URL: `overrides` over `base`'s, or over the environment's and
    `.env`'s (the services' names are not known here, so their variables are found by name)."""
    if base is not None:
        placed = base.services.as_placements()
    else:
        dotenv = dotenv_values(".env") if os.path.exists(".env") else {}
        placed = ServiceSettings.placements({**dotenv, **os.environ})
    explicit = ServiceSettings.placements(overrides)
    for variable, value in overrides.items():  # an override may unset a subgraph's URL
        match = _SERVICE_VARIABLE.match(variable)
        if match is not None and match["kind"] == "SUBGRAPH_URL" and not value:
            placed["urls"].pop(match["service"].lower(), None)
    return {field: {**placed[field], **explicit[field]} for field in placed}


def _as_env(group: _Group) -> dict[str, Any]:
    values: dict[str, Any] = {}
    for field_name, field in type(group).model_fields.items():
        alias = field.validation_alias
        if isinstance(alias, AliasChoices):
            values[str(alias.choices[0])] = getattr(group, field_name)
    return values


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return load_settings()


def to_asyncpg_url(url: str) -> str:
    """`postgresql://...` (or `postgres://`) as the asyncpg URL SQLAlchemy needs."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+asyncpg://" + url[len(prefix) :]
    return url
