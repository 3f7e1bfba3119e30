"""The transactional outbox: an event is written in the same transaction as the change it
describes, so it is published if and only if that change commits (see `OutboxRelay`)."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from typing import Any

from sqlalchemy import insert
from sqlalchemy.ext.asyncio import AsyncSession

from core.db.tables import outbox
from core.db.territories import validate_territory_code
from core.errors import BadUserInput
from core.events.cloudevents import Event
from core.events.subjects import Scope, Subject, parse_subject
from core.events.tracecontext import capture_trace_context


async def enqueue(
    session: AsyncSession,
    *,
    subject: str,
    type: str,  # the CloudEvents attribute's name
    source: str,
    data: Any,
    territory: str | None = None,
    audience: Sequence[uuid.UUID] = (),
) -> Event:
    """Write a CloudEvent to the outbox of the session's schema, in the caller's transaction.

    The current trace context travels with it. A territory or cross-territory subject names
    its territory, which `territory` may repeat but not contradict. Nothing is committed here.

    `audience`: the users the event concerns; the relay also sends it to each one's realtime
    subject (`rt.user.<id>.<domain>.<action>`), so their live subscriptions need no wider filter.
    """
    parsed = parse_subject(subject)
    if territory is not None:
        validate_territory_code(territory)
    if parsed.scope in (Scope.TERRITORY, Scope.CROSS):
        if territory not in (None, parsed.origin):
            raise BadUserInput(
                "The event's territory differs from its subject's", field="territory"
            )
        territory = parsed.origin
    event = Event(type=type, source=source, subject=subject, data=data, territory=territory)
    await session.execute(
        insert(outbox).values(
            id=event.id,
            subject=subject,
            type=type,
            source=source,
            payload=event.to_dict(),
            headers=_headers(parsed, audience),
            # now() is the same for the whole transaction; the event's own time keeps the
            # order in which one transaction wrote several events (the relay sorts by it).
            created_at=event.time,
        )
    )
    return event


# The key of the outbox headers naming the audience (never sent as a NATS header).
AUDIENCE_HEADER = "audience"


def _headers(parsed: Subject, audience: Sequence[uuid.UUID]) -> dict[str, Any]:
    headers: dict[str, Any] = dict(capture_trace_context())
    if audience:
        if parsed.domain is None:
            raise ValueError("Only events with a domain (global or territory) have an audience")
        # Validated now, in the writer's transaction, not when the relay publishes.
        headers[AUDIENCE_HEADER] = sorted({str(uuid.UUID(str(user))) for user in audience})
    return headers


def audience_of(headers: Mapping[str, Any] | None) -> list[str]:
    """The user ids an outbox row's headers name as its audience (none if absent)."""
    users = (headers or {}).get(AUDIENCE_HEADER)
    return [str(user) for user in users] if isinstance(users, list) else []
