"""Event subjects `{scope}.{origin}.{domain}.{action}`, stream names, and the namespace prefix.

Every subject is built and checked here, so nothing unvalidated (a territory code from a
request, say) can add tokens, wildcards or whitespace to a NATS subject.
"""

from __future__ import annotations

import re
import uuid
from dataclasses import dataclass
from enum import StrEnum

from core.config import NatsSettings
from core.db.territories import validate_territory_code
from core.errors import BadUserInput

# One subject token naming a domain ("user") or an action ("registered", "password_changed").
_NAME = re.compile(r"^[a-z][a-z0-9_]{0,62}$")
# NATS allows longer names; this leaves room for a prefix plus a 53-character territory code.
_DURABLE = re.compile(r"^[A-Za-z0-9_-]{1,128}$")


class Scope(StrEnum):
    GLOBAL = "global"  # global.{domain}.{action}
    TERRITORY = "territory"  # territory.{origin}.{domain}.{action}
    CROSS = "cross"  # cross.{origin}.{target}.{action}


class StreamName(StrEnum):
    """Base stream names; territory streams are `TERRITORY_<CODE>` (see `territory_stream`)."""

    GLOBAL = "GLOBAL_EVENTS"
    CROSS = "CROSS_TERRITORY"
    REALTIME = "REALTIME"


@dataclass(frozen=True)
class Subject:
    """A parsed, valid subject. `origin` is the territory it comes from, `target` (cross only)
    the territory it is addressed to."""

    scope: Scope
    action: str
    domain: str | None = None
    origin: str | None = None
    target: str | None = None

    def __str__(self) -> str:
        if self.scope is Scope.GLOBAL:
            return f"global.{self.domain}.{self.action}"
        if self.scope is Scope.TERRITORY:
            return f"territory.{self.origin}.{self.domain}.{self.action}"
        return f"cross.{self.origin}.{self.target}.{self.action}"


def _name(value: str, what: str) -> str:
    if not isinstance(value, str) or _NAME.fullmatch(value) is None:
        raise ValueError(f"Invalid event {what} {value!r}: lower-case letters, digits and '_'")
    return value


def global_subject(domain: str, action: str) -> str:
    """`global.{domain}.{action}`: platform-wide events (identities, routing)."""
    return str(Subject(Scope.GLOBAL, _name(action, "action"), domain=_name(domain, "domain")))


def territory_subject(code: str, domain: str, action: str) -> str:
    """`territory.{code}.{domain}.{action}`: an event inside one territory."""
    return str(
        Subject(
            Scope.TERRITORY,
            _name(action, "action"),
            domain=_name(domain, "domain"),
            origin=validate_territory_code(code),
        )
    )


def cross_subject(origin: str, target: str, action: str) -> str:
    """`cross.{origin}.{target}.{action}`: an event one territory addresses to another."""
    return str(
        Subject(
            Scope.CROSS,
            _name(action, "action"),
            origin=validate_territory_code(origin),
            target=validate_territory_code(target),
        )
    )


# Realtime fan-out on core NATS, outside every stream: `rt.user.<user_id>.<domain>.<action>`.
REALTIME_USER_PREFIX = "rt.user"


def realtime_user_subject(user_id: uuid.UUID | str, domain: str, action: str = "*") -> str:
    """`rt.user.<user_id>.<domain>.<action>`: an event about one user, for that user's live
    subscriptions only (`action="*"` makes the filter of every action of the domain).

    The user id must be a UUID, so no request value can widen the subject.
    """
    try:
        user = uuid.UUID(str(user_id))
    except ValueError:
        raise ValueError(f"Invalid user id {user_id!r} for a realtime subject") from None
    verb = action if action == "*" else _name(action, "action")
    return f"{REALTIME_USER_PREFIX}.{user}.{_name(domain, 'domain')}.{verb}"


def parse_subject(subject: str) -> Subject:
    """The parts of a complete subject (no namespace, no wildcards).

    Malformed shapes raise `ValueError`; an invalid territory code raises `BadUserInput`.
    """
    if not isinstance(subject, str):
        raise ValueError("An event subject is a string")
    tokens = subject.split(".")
    scope = tokens[0]
    if scope == Scope.GLOBAL and len(tokens) == 3:
        return Subject(Scope.GLOBAL, _name(tokens[2], "action"), domain=_name(tokens[1], "domain"))
    if scope == Scope.TERRITORY and len(tokens) == 4:
        return Subject(
            Scope.TERRITORY,
            _name(tokens[3], "action"),
            domain=_name(tokens[2], "domain"),
            origin=validate_territory_code(tokens[1]),
        )
    if scope == Scope.CROSS and len(tokens) == 4:
        return Subject(
            Scope.CROSS,
            _name(tokens[3], "action"),
            origin=validate_territory_code(tokens[1]),
            target=validate_territory_code(tokens[2]),
        )
    raise ValueError(
        f"Invalid event subject {subject!r}: expected global.<domain>.<action>, "
        "territory.<code>.<domain>.<action> or cross.<origin>.<target>.<action>"
    )


def validate_subject(subject: str) -> str:
    """`subject` if it is a complete, valid subject (see `parse_subject`)."""
    parse_subject(subject)
    return subject


def validate_durable_name(name: str) -> str:
    """A JetStream durable consumer name: letters, digits, `_` and `-`, at most 128."""
    if not isinstance(name, str) or _DURABLE.fullmatch(name) is None:
        raise ValueError(f"Invalid durable consumer name {name!r}")
    return name


@dataclass(frozen=True)
class Namespace:
    """Where subjects and streams live on the wire: `EVENTS_NAMESPACE` prefixes both, so several
    stacks (or test runs) can share one NATS server without seeing each other's events."""

    prefix: str = ""

    @classmethod
    def from_settings(cls, settings: NatsSettings) -> Namespace:
        return cls(settings.namespace)

    def wire_subject(self, subject: str) -> str:
        """The NATS subject of a logical subject (or of a filter with wildcards)."""
        return f"{self.prefix}.{subject}" if self.prefix else subject

    def logical_subject(self, wire_subject: str) -> str:
        """The logical subject of a NATS subject this namespace published."""
        if not self.prefix:
            return wire_subject
        head = self.prefix + "."
        if not wire_subject.startswith(head):
            raise ValueError(f"Subject {wire_subject!r} is outside namespace {self.prefix!r}")
        return wire_subject[len(head) :]

    def stream(self, base: str) -> str:
        """The JetStream stream name of a base name (`GLOBAL_EVENTS` -> `T1A2_GLOBAL_EVENTS`)."""
        return f"{self.prefix.upper()}_{base}" if self.prefix else base


def territory_stream(code: str) -> str:
    """Base name of a territory's stream: `TERRITORY_DK`, `TERRITORY_DK_NORTH` for `dk-north`."""
    return "TERRITORY_" + validate_territory_code(code).upper().replace("-", "_")


def stream_for_filter(subject_filter: str) -> str:
    """Base name of the one stream holding every subject a consumer filter matches.

    JetStream consumers live inside one stream, so a filter must not span streams
    (`territory.*.user.registered` does: consume each territory's stream instead).
    """
    tokens = subject_filter.split(".") if isinstance(subject_filter, str) else []
    for index, part in enumerate(tokens):
        wildcard = part in ("*", ">")
        if not wildcard and _NAME.fullmatch(part) is None and not _is_code(part):
            raise ValueError(f"Invalid subject filter {subject_filter!r}")
        if part == ">" and index != len(tokens) - 1:
            raise ValueError(f"'>' must end a subject filter: {subject_filter!r}")
    if tokens and tokens[0] == Scope.GLOBAL:
        return StreamName.GLOBAL
    if tokens and tokens[0] == Scope.CROSS:
        return StreamName.CROSS
    if len(tokens) >= 2 and tokens[0] == Scope.TERRITORY and tokens[1] not in ("*", ">"):
        return territory_stream(tokens[1])
    raise ValueError(
        f"Subject filter {subject_filter!r} does not lie within one stream "
        "(global.>, cross.> or territory.<code>.>)"
    )


def _is_code(token: str) -> bool:
    try:
        validate_territory_code(token)
    except BadUserInput:
        return False
    return True
