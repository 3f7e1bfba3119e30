"""CloudEvents 1.0 JSON: the attributes on the wire, and what is refused on the way in."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta, timezone

import orjson
import pytest

from core.events.cloudevents import Event, EventFormatError, format_time
from core.events.timing import PUBLISH_TIME_ATTRIBUTE, with_publish_time


def _event(**overrides: object) -> Event:
    values: dict[str, object] = {
        "type": "org.unityplan.user.registered",
        "source": "/subgraphs/auth",
        "subject": "territory.dk.user.registered",
        "data": {"userId": "42", "at": datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)},
        "territory": "dk",
    }
    values.update(overrides)
    return Event(**values)  # type: ignore[arg-type]


def test_json_shape_is_cloudevents_1_0() -> None:
    event = _event(time=datetime(2026, 11, 26, 13, 45, 0, 123456, tzinfo=UTC))
    document = orjson.loads(event.to_bytes())
    assert document == {
        "specversion": "1.0",
        "id": str(event.id),
        "source": "/subgraphs/auth",
        "type": "org.unityplan.user.registered",
        "time": "2026-11-26T13:45:00.123456Z",
        "subject": "territory.dk.user.registered",
        "datacontenttype": "application/json",
        "data": {"userId": "42", "at": "2026-01-02T03:04:05+00:00"},
        "territory": "dk",
    }
    assert uuid.UUID(document["id"]).version == 4


def test_global_events_carry_no_territory_attribute() -> None:
    document = _event(territory=None, subject="global.user.registered").to_dict()
    assert "territory" not in document


def test_round_trip_through_bytes() -> None:
    event = _event(data={"n": 1, "list": [1, "two", None]})
    again = Event.from_bytes(event.to_bytes())
    assert again == event


def test_times_are_utc_rfc3339() -> None:
    copenhagen = timezone(timedelta(hours=1))
    assert format_time(datetime(2026, 1, 1, 1, 0, tzinfo=copenhagen)) == (
        "2026-01-01T00:00:00.000000Z"
    )
    with pytest.raises(ValueError, match="timezone"):
        format_time(datetime(2026, 1, 1))  # naive on purpose


@pytest.mark.parametrize(
    ("payload", "message"),
    [
        (b"not json", "JSON"),
        (b"[]", "object"),
        (b'{"specversion": "1.0", "id": "x", "source": "s"}', "type"),
        (b'{"specversion": "0.3", "id": "x", "source": "s", "type": "t"}', "version"),
        (
            b'{"specversion": "1.0", "id": "not-a-uuid", "source": "s", "type": "t",'
            b' "time": "2026-01-01T00:00:00Z"}',
            "UUID",
        ),
        (
            b'{"specversion": "1.0", "id": "6f1c1bb2-8b3e-4c5c-9a53-4b2f7b3f1c11", "source": "s",'
            b' "type": "t", "time": "2026-01-01T00:00:00"}',
            "offset",
        ),
        (
            b'{"specversion": "1.0", "id": "6f1c1bb2-8b3e-4c5c-9a53-4b2f7b3f1c11", "source": "s",'
            b' "type": "t", "time": "2026-01-01T00:00:00Z", "datacontenttype": "text/xml"}',
            "content type",
        ),
    ],
)
def test_malformed_events_are_refused(payload: bytes, message: str) -> None:
    with pytest.raises(EventFormatError, match=message):
        Event.from_bytes(payload)


def test_the_relay_stamps_its_publish_time_on_the_stored_document() -> None:
    event = Event(type="org.unityplan.test", source="/tests", subject="global.test.stamped")
    published = event.time + timedelta(milliseconds=3)
    stamped = with_publish_time(orjson.dumps(event.to_dict()) + b"\n", published)
    read = Event.from_bytes(stamped)
    assert read.publishtime == published
    assert orjson.loads(stamped)[PUBLISH_TIME_ATTRIBUTE] == format_time(published)
    # Everything else as written, and the attribute survives another round trip.
    assert Event.from_bytes(read.to_bytes()) == read
    assert Event.from_bytes(event.to_bytes()).publishtime is None
    with pytest.raises(ValueError, match="JSON object"):
        with_publish_time(b"[]", published)
