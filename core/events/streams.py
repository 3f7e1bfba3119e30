"""The JetStream streams and their configuration, created or brought up to date idempotently."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from nats.js import JetStreamContext
from nats.js.api import DiscardPolicy, RetentionPolicy, StorageType, StreamConfig, StreamInfo
from nats.js.errors import BadRequestError, NotFoundError

from core.config import NatsSettings
from core.db.territories import validate_territory_code
from core.events.subjects import REALTIME_USER_PREFIX, Namespace, StreamName, territory_stream

log = logging.getLogger(__name__)

_DAY = 86400.0


@dataclass(frozen=True)
class StreamSpec:
    """What one stream must look like: its name, subjects, retention and duplicate window."""

    name: str
    subjects: tuple[str, ...]
    max_age_seconds: float
    duplicate_window_seconds: float
    description: str

    def config(self) -> StreamConfig:
        return StreamConfig(
            name=self.name,
            description=self.description,
            subjects=list(self.subjects),
            retention=RetentionPolicy.LIMITS,
            storage=StorageType.FILE,
            discard=DiscardPolicy.OLD,
            max_age=self.max_age_seconds,
            duplicate_window=self.duplicate_window_seconds,
        )

    def matches(self, config: StreamConfig) -> bool:
        """Whether a stream's current configuration already is this one."""
        return (
            sorted(config.subjects or []) == sorted(self.subjects)
            and _close(config.max_age, self.max_age_seconds)
            and _close(config.duplicate_window, self.duplicate_window_seconds)
            and (config.description or "") == self.description
        )


def _close(actual: float | None, wanted: float) -> bool:
    # The server stores durations in nanoseconds; the client hands them back as float seconds.
    return actual is not None and abs(actual - wanted) < 1e-3


def _duplicate_window(settings: NatsSettings, max_age: float) -> float:
    # JetStream rejects a duplicate window longer than the stream's retention.
    return min(settings.duplicate_window_seconds, max_age)


def global_stream(settings: NatsSettings) -> StreamSpec:
    namespace = Namespace.from_settings(settings)
    max_age = settings.global_retention_days * _DAY
    return StreamSpec(
        name=namespace.stream(StreamName.GLOBAL),
        subjects=(namespace.wire_subject("global.>"),),
        max_age_seconds=max_age,
        duplicate_window_seconds=_duplicate_window(settings, max_age),
        description="Platform-wide events: identities and routing",
    )


def cross_stream(settings: NatsSettings) -> StreamSpec:
    namespace = Namespace.from_settings(settings)
    max_age = settings.cross_retention_days * _DAY
    return StreamSpec(
        name=namespace.stream(StreamName.CROSS),
        subjects=(namespace.wire_subject("cross.>"),),
        max_age_seconds=max_age,
        duplicate_window_seconds=_duplicate_window(settings, max_age),
        description="Events one territory addresses to another",
    )


# Realtime copies only have to outlive a NATS outage until the live feeds have resumed.
REALTIME_RETENTION_SECONDS = 600.0


def realtime_stream(settings: NatsSettings) -> StreamSpec:
    namespace = Namespace.from_settings(settings)
    return StreamSpec(
        name=namespace.stream(StreamName.REALTIME),
        subjects=(namespace.wire_subject(f"{REALTIME_USER_PREFIX}.>"),),
        max_age_seconds=REALTIME_RETENTION_SECONDS,
        duplicate_window_seconds=_duplicate_window(settings, REALTIME_RETENTION_SECONDS),
        description="Realtime copies of events for the users they concern (live feeds only)",
    )


def territory_stream_spec(settings: NatsSettings, code: str) -> StreamSpec:
    namespace = Namespace.from_settings(settings)
    code = validate_territory_code(code)
    max_age = settings.territory_retention_days * _DAY
    return StreamSpec(
        name=namespace.stream(territory_stream(code)),
        subjects=(namespace.wire_subject(f"territory.{code}.>"),),
        max_age_seconds=max_age,
        duplicate_window_seconds=_duplicate_window(settings, max_age),
        description=f"Events of territory {code}",
    )


def stream_specs(settings: NatsSettings, territory_codes: Iterable[str]) -> list[StreamSpec]:
    """Every stream the platform needs: global, cross-territory, realtime, one per territory."""
    specs = [global_stream(settings), cross_stream(settings), realtime_stream(settings)]
    specs.extend(territory_stream_spec(settings, code) for code in sorted(set(territory_codes)))
    return specs


async def ensure_stream(js: JetStreamContext, spec: StreamSpec) -> StreamInfo:
    """Create the stream, or update it when its configuration differs; otherwise leave it."""
    try:
        info = await js.stream_info(spec.name)
    except NotFoundError:
        log.info("creating stream %s", spec.name)
        try:
            return await js.add_stream(spec.config())
        except BadRequestError:
            # Another service created it meanwhile, configured differently: update it below.
            info = await js.stream_info(spec.name)
    if spec.matches(info.config):
        return info
    log.info("updating stream %s", spec.name)
    # Start from the live configuration so settings this module does not own survive.
    return await js.update_stream(
        info.config.evolve(
            subjects=list(spec.subjects),
            max_age=spec.max_age_seconds,
            duplicate_window=spec.duplicate_window_seconds,
            description=spec.description,
        )
    )


async def ensure_streams(js: JetStreamContext, specs: Iterable[StreamSpec]) -> list[StreamInfo]:
    return [await ensure_stream(js, spec) for spec in specs]


async def delete_namespace_streams(js: JetStreamContext, namespace: Namespace) -> list[str]:
    """Delete every stream of a scratch namespace (a test run or a benchmark) and name them.

    Refuses the empty namespace: the streams of a real stack are never removed this way.
    """
    if not namespace.prefix:
        raise ValueError("Only the streams of a named namespace can be deleted")
    marker = namespace.stream("")
    names: list[str] = []
    # The server answers a page at a time (256 streams); a shared server holds more.
    while page := await js.streams_info(offset=len(names)):
        names.extend(info.config.name or "" for info in page)
    deleted = []
    for name in names:
        if name.startswith(marker):
            await js.delete_stream(name)
            deleted.append(name)
    return deleted


async def drop_scratch_namespace(nats_url: str, namespace: str) -> list[str]:
    """Connect to `nats_url` and delete the streams of the scratch `namespace`."""
    import nats

    client = await nats.connect(nats_url, connect_timeout=2, max_reconnect_attempts=1)
    try:
        return await delete_namespace_streams(client.jetstream(), Namespace(namespace))
    finally:
        await client.close()
