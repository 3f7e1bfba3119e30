"""How long a client's subscriptions may live: until its session is revoked or its access token
expires (unless the client sends a fresh one), checked for every live session in one round trip."""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime

from core.errors import Unauthenticated
from core.security import Principal, SessionRegistry

log = logging.getLogger("unityplan.router.subscriptions")

SESSION_ENDED = "Session has ended, sign in again"
TOKEN_EXPIRED = "Access token expired; send a fresh one to keep subscriptions open"  # noqa: S105


# Verifies an `Authorization` value: None when absent, else the caller or `Unauthenticated`.
Verifier = Callable[[str | None], Awaitable[Principal | None]]


def unauthenticated(message: str) -> list[dict[str, object]]:
    return [{"message": message, "extensions": {"code": "UNAUTHENTICATED"}}]


class Viewer:
    """The authenticated caller of one client connection; `on_end` fires once when it may no
    longer receive events (the session was revoked or the token expired)."""

    def __init__(self, principal: Principal, authorization: str) -> None:
        self.principal = principal
        self.authorization = authorization
        self.ended: str | None = None
        self._listeners: list[Callable[[str], None]] = []
        self._expiry: asyncio.TimerHandle | None = None

    @classmethod
    def unverified(cls, authorization: str) -> Viewer:
        """A caller whose token this router cannot check (no revocation registry): it is sent
        on to the subgraphs, which check it; its subscriptions share upstreams by token."""
        digest = hashlib.sha256(authorization.encode()).hexdigest()[:32]
        principal = Principal(
            user_id="",
            username="",
            territory_code="",
            session_id=f"unverified:{digest}",
            roles=frozenset(),
            token_id="",
            expires_at=datetime.max.replace(tzinfo=UTC),
        )
        return cls(principal, authorization)

    def on_end(self, listener: Callable[[str], None]) -> Callable[[], None]:
        """Call `listener(reason)` when the viewer ends; returns a function that unregisters."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def end(self, reason: str) -> None:
        if self.ended is not None:
            return
        self.ended = reason
        if self._expiry is not None:
            self._expiry.cancel()
        for listener in list(self._listeners):
            listener(reason)

    def schedule_expiry(self) -> None:
        if self._expiry is not None:
            self._expiry.cancel()
        delay = self.principal.expires_at.timestamp() - time.time()
        loop = asyncio.get_running_loop()
        self._expiry = loop.call_later(max(delay, 0.0), self.end, TOKEN_EXPIRED)


class SessionWatch:
    """Ends viewers whose session was revoked, polling the revocation registry for all live
    sessions at once every `interval_seconds` (one Redis pipeline however many clients)."""

    def __init__(
        self,
        credentials: Callable[[], tuple[Verifier, SessionRegistry] | None],
        interval_seconds: float = 0.5,
    ) -> None:
        # Made on first use: an anonymous-only router needs neither signing keys nor Redis.
        # None: this router verifies no tokens (it has no revocation registry).
        self._credentials = credentials
        self._resolved: tuple[Verifier, SessionRegistry] | None = None
        self._checked = False
        self.interval_seconds = interval_seconds
        self._viewers: dict[str, set[Viewer]] = {}
        self._task: asyncio.Task[None] | None = None

    async def authenticate(self, authorization: str | None) -> Viewer | None:
        """The watched viewer of an `Authorization` value; None when anonymous, and
        `Unauthenticated` for a bad, expired or revoked token."""
        if authorization is None:
            return None
        credentials = self.credentials()
        if credentials is None:
            return Viewer.unverified(authorization)
        principal = await credentials[0](authorization)
        if principal is None:
            return None
        viewer = Viewer(principal, authorization)
        viewer.schedule_expiry()
        self._viewers.setdefault(principal.session_id, set()).add(viewer)
        self._ensure_running()
        return viewer

    async def renew(self, viewer: Viewer, authorization: str) -> None:
        """Replace the viewer's token with a fresh one of the same user (after a refresh)."""
        credentials = self.credentials()
        if credentials is None:
            viewer.authorization = authorization
            return
        principal = await credentials[0](authorization)
        if principal is None or principal.user_id != viewer.principal.user_id:
            raise Unauthenticated("A fresh token must belong to the same user")
        if viewer.ended is not None:
            raise Unauthenticated(viewer.ended)
        self.forget(viewer)
        viewer.principal, viewer.authorization = principal, authorization
        viewer.schedule_expiry()
        self._viewers.setdefault(principal.session_id, set()).add(viewer)

    def credentials(self) -> tuple[Verifier, SessionRegistry] | None:
        if not self._checked:
            self._resolved = self._credentials()
            self._checked = True
        return self._resolved

    def forget(self, viewer: Viewer) -> None:
        watched = self._viewers.get(viewer.principal.session_id)
        if watched is not None:
            watched.discard(viewer)
            if not watched:
                del self._viewers[viewer.principal.session_id]

    def _ensure_running(self) -> None:
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._poll(), name="subscriptions:session-watch")

    async def _poll(self) -> None:
        while self._viewers:
            await asyncio.sleep(self.interval_seconds)
            sessions = list(self._viewers)
            credentials = self.credentials()
            if credentials is None:
                return
            try:
                revoked = await credentials[1].revoked_among(sessions)
            except Exception as exc:  # Redis briefly away: keep streams, check again soon
                log.warning("cannot check session revocations: %s", exc)
                continue
            for session_id in revoked:
                for viewer in list(self._viewers.pop(session_id, ())):
                    viewer.end(SESSION_ENDED)

    async def close(self) -> None:
        task, self._task = self._task, None
        if task is not None:
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
