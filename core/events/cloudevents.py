"""Events as CloudEvents 1.0 in the JSON format, with the `territory` extension attribute and
`publishtime` (when the outbox relay published the event, see `core.events.timing`)."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import orjson

SPEC_VERSION = "1.0"
JSON_CONTENT_TYPE = "application/json"

_REQUIRED = ("specversion", "id", "source", "type")


class EventFormatError(ValueError):
    """Bytes or a mapping that is not a CloudEvent this platform can read."""


def format_time(moment: datetime) -> str:
    """RFC 3339 in UTC with microseconds: `2026-11-26T13:45:00.123456Z`."""
    if moment.tzinfo is None:
        raise ValueError("Event times must be timezone-aware")
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclass(frozen=True)
class Event:
    """One CloudEvent. `subject` is the logical event subject (`territory.dk.user.registered`),
    without any namespace; `territory` is the territory the event belongs to, if any."""

    type: str
    source: str
    subject: str
    data: Any = None
    territory: str | None = None
    id: uuid.UUID = field(default_factory=uuid.uuid4)
    time: datetime = field(default_factory=lambda: datetime.now(UTC))
    datacontenttype: str = JSON_CONTENT_TYPE
    specversion: str = SPEC_VERSION
    publishtime: datetime | None = None

    def to_dict(self) -> dict[str, Any]:
        """The JSON-format attributes, `data` normalised to plain JSON values."""
        return orjson.loads(self.to_bytes())  # type: ignore[no-any-return]

    def to_bytes(self) -> bytes:
        document: dict[str, Any] = {
            "specversion": self.specversion,
            "id": str(self.id),
            "source": self.source,
            "type": self.type,
            "time": format_time(self.time),
            "subject": self.subject,
            "datacontenttype": self.datacontenttype,
            "data": self.data,
        }
        if self.territory is not None:
            document["territory"] = self.territory
        if self.publishtime is not None:
            document["publishtime"] = format_time(self.publishtime)
        return orjson.dumps(document)

    @classmethod
    def from_dict(cls, document: Any) -> Event:
        if not isinstance(document, dict):
            raise EventFormatError("A CloudEvent is a JSON object")
        missing = [name for name in _REQUIRED if not document.get(name)]
        if missing:
            raise EventFormatError(f"CloudEvent without {', '.join(missing)}")
        if document["specversion"] != SPEC_VERSION:
            raise EventFormatError(f"Unsupported CloudEvents version {document['specversion']!r}")
        content_type = document.get("datacontenttype", JSON_CONTENT_TYPE)
        if content_type != JSON_CONTENT_TYPE:
            raise EventFormatError(f"Unsupported data content type {content_type!r}")
        territory = document.get("territory")
        published = document.get("publishtime")
        try:
            return cls(
                id=uuid.UUID(str(document["id"])),
                source=_text(document["source"], "source"),
                type=_text(document["type"], "type"),
                subject=_text(document.get("subject", ""), "subject"),
                time=_parse_time(document.get("time")),
                data=document.get("data"),
                territory=None if territory is None else _text(territory, "territory"),
                datacontenttype=content_type,
                publishtime=None if published is None else _parse_time(published),
            )
        except ValueError as exc:
            raise EventFormatError(str(exc)) from exc

    @classmethod
    def from_bytes(cls, payload: bytes) -> Event:
        try:
            document = orjson.loads(payload)
        except orjson.JSONDecodeError as exc:
            raise EventFormatError("A CloudEvent must be JSON") from exc
        return cls.from_dict(document)


def _text(value: Any, name: str) -> str:
    if not isinstance(value, str):
        raise EventFormatError(f"CloudEvent attribute {name} must be a string")
    return value


def _parse_time(value: Any) -> datetime:
    if not isinstance(value, str):
        raise EventFormatError("CloudEvent attribute time must be an RFC 3339 string")
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is None:
        raise EventFormatError("CloudEvent time must carry a UTC offset")
    return moment
