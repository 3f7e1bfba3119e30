"""Outgoing mail: SMTP in production, a sink writing each mail to `<DEVSTACK_DIR>/mail/` in dev.

The sink needs no network, so development and tests read the mails (reset and verification
tokens) from files.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from pathlib import Path
from typing import Protocol
from urllib.parse import unquote, urlsplit

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Mail:
    to: str
    subject: str
    body: str


class Mailer(Protocol):
    async def send(self, mail: Mail) -> None: ...


class DevMailSink:
    """Writes each mail as an `.eml` file and logs that it did (never the body)."""

    def __init__(self, directory: Path, sender: str) -> None:
        self.directory = directory
        self.sender = sender

    async def send(self, mail: Mail) -> None:
        message = _message(self.sender, mail)
        stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S%f")
        path = self.directory / f"{stamp}-{uuid.uuid4().hex[:8]}.eml"
        await asyncio.to_thread(_write, path, message.as_bytes())
        logger.info("mail written to the dev sink", extra={"mail_file": path.name})

    def mails_to(self, address: str) -> list[EmailMessage]:
        """Every mail in the sink addressed to `address`, oldest first (for tests and dev)."""
        import email
        import email.policy

        found: list[EmailMessage] = []
        if not self.directory.exists():
            return found
        for path in sorted(self.directory.glob("*.eml")):
            parsed = email.message_from_bytes(path.read_bytes(), policy=email.policy.default)
            if isinstance(parsed, EmailMessage) and parsed["To"] == address:
                found.append(parsed)
        return found


class SmtpMailer:
    """SMTP with STARTTLS (`smtp://`) or implicit TLS (`smtps://`), credentials in the URL."""

    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        self._tls = parts.scheme == "smtps"
        self._host = parts.hostname or "localhost"
        self._port = parts.port or (465 if self._tls else 587)
        self._user = unquote(parts.username) if parts.username else None
        self._password = unquote(parts.password) if parts.password else None
        self.sender = sender

    async def send(self, mail: Mail) -> None:
        await asyncio.to_thread(self._send, _message(self.sender, mail))

    def _send(self, message: EmailMessage) -> None:
        context = ssl.create_default_context()
        if self._tls:
            with smtplib.SMTP_SSL(self._host, self._port, context=context, timeout=10) as smtp:
                self._deliver(smtp, message)
        else:
            with smtplib.SMTP(self._host, self._port, timeout=10) as smtp:
                smtp.starttls(context=context)
                self._deliver(smtp, message)

    def _deliver(self, smtp: smtplib.SMTP, message: EmailMessage) -> None:
        if self._user is not None and self._password is not None:
            smtp.login(self._user, self._password)
        smtp.send_message(message)


class MailQueue:
    """Sends mail in the background, so a reply never waits for (or betrays) a delivery: a
    password-reset request for an existing account returns as fast as one for nobody."""

    def __init__(self, mailer: Mailer) -> None:
        self.mailer = mailer
        self._pending: set[asyncio.Task[None]] = set()

    def post(self, mail: Mail) -> None:
        task = asyncio.create_task(self._deliver(mail), name="mail")
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    async def _deliver(self, mail: Mail) -> None:
        try:
            await self.mailer.send(mail)
        except Exception:  # a mail server outage must not surface in someone else's request
            logger.exception("mail delivery failed")

    async def drain(self) -> None:
        """Wait for every mail posted so far (at shutdown)."""
        if self._pending:
            await asyncio.gather(*self._pending, return_exceptions=True)


def _message(sender: str, mail: Mail) -> EmailMessage:
    message = EmailMessage()
    message["From"] = sender
    message["To"] = mail.to
    message["Subject"] = mail.subject
    message.set_content(mail.body)
    return message


def _write(path: Path, content: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(content)


def create_mailer(smtp_url: str, sender: str, devstack_dir: Path) -> Mailer:
    """SMTP when `smtp_url` is set, else the dev sink under `devstack_dir/mail`."""
    if smtp_url:
        return SmtpMailer(smtp_url, sender)
    return DevMailSink(devstack_dir / "mail", sender)
