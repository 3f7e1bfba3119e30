"""Opaque keyset cursors for the Relay-style connections (stable under concurrent inserts)."""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

import orjson

from core.errors import BadUserInput

MAX_PAGE_SIZE = 100


def page_size(first: int | None, *, default: int = 20) -> int:
    """`first` clamped to 1..100; zero or negative is a client mistake."""
    if first is None:
        return default
    if first < 1:
        raise BadUserInput("`first` must be at least 1", field="first")
    return min(first, MAX_PAGE_SIZE)


@dataclass(frozen=True)
class EdgeCursor:
    """Position after an edge of a newest-first list: its time, then the other end's id."""

    at: datetime
    user_id: UUID

    def encode(self) -> str:
        raw = orjson.dumps(["e", self.at.isoformat(), str(self.user_id)])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> EdgeCursor:
        parts = _decode(cursor)
        try:
            tag, at, user_id = parts
            if tag != "e" or not isinstance(at, str) or not isinstance(user_id, str):
                raise ValueError(tag)
            moment = datetime.fromisoformat(at)
            if moment.tzinfo is None:
                raise ValueError(at)
            return cls(at=moment, user_id=UUID(user_id))
        except (TypeError, ValueError) as exc:
            raise BadUserInput("Invalid cursor", field="after") from exc


@dataclass(frozen=True)
class SearchCursor:
    """Position after a search hit in (folded username, id) order."""

    key: str
    user_id: UUID

    def encode(self) -> str:
        raw = orjson.dumps(["s", self.key, str(self.user_id)])
        return base64.urlsafe_b64encode(raw).decode().rstrip("=")

    @classmethod
    def decode(cls, cursor: str) -> SearchCursor:
        parts = _decode(cursor)
        try:
            tag, key, user_id = parts
            if tag != "s" or not isinstance(key, str) or not isinstance(user_id, str):
                raise ValueError(tag)
            return cls(key=key, user_id=UUID(user_id))
        except (TypeError, ValueError) as exc:
            raise BadUserInput("Invalid cursor", field="after") from exc


def _decode(cursor: str) -> list[object]:
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        value = orjson.loads(base64.urlsafe_b64decode(padded.encode("ascii")))
    except (ValueError, binascii.Error, UnicodeEncodeError) as exc:
        raise BadUserInput("Invalid cursor", field="after") from exc
    if not isinstance(value, list) or len(value) != 3:
        raise BadUserInput("Invalid cursor", field="after")
    return value
