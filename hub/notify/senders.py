"""Where notices leave the hub: e-mail over SMTP, SMS through a generic HTTP gateway adapter
(and, in ``madoguchi demo`` only, a memory sink shown on the demo's own page).

Why so thin: a sender only moves one message; retries, backoff and logging live in
``deliver`` so both channels behave alike. Nothing here logs an address, a number or a text:
exceptions from ``smtplib`` can carry the recipient, so only their type and SMTP code are kept.

SMS gateway contract (``HttpSmsSender``; see ``hub/notify/README.md``): the hub sends
``POST <MADOGUCHI_SMS_URL>`` with ``Content-Type: application/json``, ``Authorization: Bearer
<MADOGUCHI_SMS_TOKEN>`` (when set) and the body ``{"to": "+819012345678", "text": "...",
"lang": "ja"}`` (``to`` in E.164). Any 2xx means accepted. 408, 429 and 5xx (and network
errors) are retried with backoff; any other status is a permanent refusal (not retried).
A small adapter in front of a vendor's API (Twilio, AWS SNS, a carrier's gateway) maps this.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import Protocol
from urllib.parse import unquote, urlsplit

import aiohttp

_LOGGER = logging.getLogger(__name__)

RETRY_DELAYS_S: tuple[float, ...] = (2.0, 10.0, 30.0, 120.0)


@dataclass(frozen=True)
class Notice:
    """One message to one contact. ``ref`` names it in logs (subscription id and kind)."""

    ref: str
    to: str
    lang: str
    subject: str
    body: str

    def __repr__(self) -> str:  # never the contact or the text, even in a traceback
        return f"Notice(ref={self.ref!r}, lang={self.lang!r})"


class SendError(Exception):
    """A failed attempt; ``permanent``: retrying cannot help. The message never holds contacts."""

    def __init__(self, reason: str, permanent: bool = False) -> None:
        super().__init__(reason)
        self.permanent = permanent


class Sender(Protocol):
    channel: str

    async def send(self, notice: Notice) -> None: ...


class SmtpSender:
    """``smtp://[user:pass@]host[:port]`` (STARTTLS when the server offers it) or ``smtps://``
    (implicit TLS); stdlib ``smtplib`` in a worker thread. Subject and body in UTF-8."""

    channel = "email"

    def __init__(self, url: str, sender: str, timeout_s: float = 20.0) -> None:
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise ValueError("MADOGUCHI_SMTP_URL must be smtp://host[:port] or smtps://host[:port]")
        self.tls = parts.scheme == "smtps"
        self.host = parts.hostname
        self.port = parts.port or (465 if self.tls else 25)
        self.user = unquote(parts.username) if parts.username else None
        self.password = unquote(parts.password) if parts.password else None
        self.sender, self.timeout_s = sender, timeout_s

    def message(self, notice: Notice) -> EmailMessage:
        msg = EmailMessage()
        msg["From"] = self.sender
        msg["To"] = notice.to
        msg["Subject"] = notice.subject
        msg["Date"] = formatdate(localtime=False)
        msg["Message-ID"] = make_msgid(domain=self.sender.rpartition("@")[2] or None)
        msg["Auto-Submitted"] = "auto-generated"
        msg.set_content(notice.body, charset="utf-8")
        msg["Content-Language"] = notice.lang  # after set_content, which drops Content-* headers
        return msg

    def _send(self, notice: Notice) -> None:
        context = ssl.create_default_context()
        smtp: smtplib.SMTP
        if self.tls:
            smtp = smtplib.SMTP_SSL(self.host, self.port, timeout=self.timeout_s, context=context)
        else:
            smtp = smtplib.SMTP(self.host, self.port, timeout=self.timeout_s)
        with smtp:
            smtp.ehlo()
            if not self.tls and smtp.has_extn("starttls"):
                smtp.starttls(context=context)
                smtp.ehlo()
            if self.user:
                smtp.login(self.user, self.password or "")
            smtp.send_message(self.message(notice))

    async def send(self, notice: Notice) -> None:
        try:
            await asyncio.to_thread(self._send, notice)
        except smtplib.SMTPRecipientsRefused:
            raise SendError("recipient refused", permanent=True) from None
        except smtplib.SMTPResponseException as exc:
            raise SendError(f"SMTP {exc.smtp_code}", permanent=500 <= exc.smtp_code < 600
                            ) from None
        except (smtplib.SMTPException, OSError) as exc:
            raise SendError(type(exc).__name__) from None


class HttpSmsSender:
    """The generic SMS gateway adapter (contract in the module docstring)."""

    channel = "sms"

    def __init__(self, url: str, token: str | None, timeout_s: float = 15.0) -> None:
        if urlsplit(url).scheme not in ("http", "https"):
            raise ValueError("MADOGUCHI_SMS_URL must be an http(s) URL")
        self.url, self.token, self.timeout_s = url, token, timeout_s

    async def send(self, notice: Notice) -> None:
        headers = {"Authorization": f"Bearer {self.token}"} if self.token else {}
        body = {"to": notice.to, "text": notice.body, "lang": notice.lang}
        timeout = aiohttp.ClientTimeout(total=self.timeout_s)
        try:
            async with aiohttp.ClientSession(timeout=timeout) as session, \
                    session.post(self.url, json=body, headers=headers) as resp:
                status = resp.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise SendError(type(exc).__name__) from None
        if status // 100 != 2:
            raise SendError(f"HTTP {status}",
                            permanent=status not in (408, 429) and status < 500)


@dataclass(frozen=True)
class SinkMessage:
    """One notice kept by a ``MemorySink`` (``at``: when the hub handed it over, UTC)."""

    at: datetime
    channel: str
    to: str
    lang: str
    subject: str
    body: str

    def __repr__(self) -> str:  # like Notice: never the contact or the text
        return f"SinkMessage(channel={self.channel!r}, lang={self.lang!r})"


class MemorySink:
    """Demo only: "delivers" a notice by keeping it in this process's memory (``box``, newest
    last, bounded). Nothing is sent, written to disk or logged; the demo shows the box on its own
    page so notices can be tried without a mail server or an SMS gateway. Never for production:
    the contacts stay readable in memory until the box drops them or the process ends."""

    def __init__(self, channel: str, box: deque[SinkMessage],
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC)) -> None:
        self.channel, self.box, self.clock = channel, box, clock

    async def send(self, notice: Notice) -> None:
        self.box.append(SinkMessage(self.clock(), self.channel, notice.to, notice.lang,
                                    notice.subject, notice.body))


async def deliver(sender: Sender, notice: Notice,
                  delays: Sequence[float] = RETRY_DELAYS_S) -> bool:
    """Send with retries and backoff; True once accepted. Failures are logged by reference."""
    for attempt in range(len(delays) + 1):
        try:
            await sender.send(notice)
        except SendError as exc:
            last = exc.permanent or attempt == len(delays)
            _LOGGER.warning("notice %s by %s: attempt %d failed (%s)%s", notice.ref,
                            sender.channel, attempt + 1, exc,
                            "; given up" if last else "; will retry")
            if last:
                return False
            await asyncio.sleep(delays[attempt])
        else:
            _LOGGER.info("notice %s sent by %s", notice.ref, sender.channel)
            return True
    return False
