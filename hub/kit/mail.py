"""E-mails in bulk: many messages over one SMTP connection, each with the server's answer (notices,
forms).

Why not ``hub.notify.senders.SmtpSender``: it opens a connection per message (fine for a
"your turn" notice, far too slow for 5,000 notices), and it keeps only "sent or not". Here a
batch shares one connection and every recipient gets the SMTP answer to its ``RCPT``/``DATA``:
250 → accepted ("delivered" to the ward's mail server), 5xx → bounced at once (a permanent
refusal), 4xx or a broken connection → failed for now (retried by the next run). Bounces that
arrive later as delivery-status e-mails are not read (no mailbox is polled); the README says so.

Messages are built by ``SmtpSender.message`` (one copy of the headers). Nothing here logs an
address or a text: only refs (recipient ids) and SMTP codes.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import smtplib
import ssl
from collections import deque
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

from aiohttp import web

from hub.notify.api import NOTIFIER
from hub.notify.senders import MemorySink, Notice, SinkMessage, SmtpSender
from hub.settings import HubSettings
from hub.store.store import now_utc

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True)
class Outcome:
    """The answer for one message: ``status`` is ``sent``, ``bounced`` or ``failed``."""

    ref: str
    status: str
    code: int | None


class Mailer(Protocol):
    async def send_batch(self, mails: Sequence[Notice]) -> list[Outcome]: ...


class SmtpMailer:
    """Batches over ``SmtpSender``'s connection settings (STARTTLS, login, implicit TLS)."""

    def __init__(self, url: str, sender: str, batch: int = 100, connections: int = 4,
                 timeout_s: float = 30.0) -> None:
        self.smtp = SmtpSender(url, sender, timeout_s)
        self.batch, self.connections = batch, connections

    def _connect(self) -> smtplib.SMTP:
        s, context = self.smtp, ssl.create_default_context()
        smtp: smtplib.SMTP
        if s.tls:
            smtp = smtplib.SMTP_SSL(s.host, s.port, timeout=s.timeout_s, context=context)
        else:
            smtp = smtplib.SMTP(s.host, s.port, timeout=s.timeout_s)
        smtp.ehlo()
        if not s.tls and smtp.has_extn("starttls"):
            smtp.starttls(context=context)
            smtp.ehlo()
        if s.user:
            smtp.login(s.user, s.password or "")
        return smtp

    def _send_chunk(self, mails: Sequence[Notice]) -> list[Outcome]:
        out: list[Outcome] = []
        smtp: smtplib.SMTP | None = None
        try:
            for mail in mails:
                if smtp is None:
                    try:
                        smtp = self._connect()
                    except (smtplib.SMTPException, OSError) as exc:
                        _LOGGER.warning("notice mail: cannot connect (%s)", type(exc).__name__)
                        out.extend(Outcome(m.ref, "failed", None) for m in mails[len(out):])
                        return out
                try:
                    smtp.send_message(self.smtp.message(mail))
                    out.append(Outcome(mail.ref, "sent", 250))
                except smtplib.SMTPRecipientsRefused as exc:
                    codes = [c for c, _m in exc.recipients.values()]
                    code = int(codes[0]) if codes else 550
                    out.append(Outcome(mail.ref, "bounced" if code >= 500 else "failed", code))
                    try:
                        smtp.rset()
                    except (smtplib.SMTPException, OSError):
                        smtp = None  # the next mail opens a new connection
                except smtplib.SMTPResponseException as exc:
                    code = int(exc.smtp_code)
                    out.append(Outcome(mail.ref, "bounced" if code >= 500 else "failed", code))
                    try:
                        smtp.rset()
                    except (smtplib.SMTPException, OSError):
                        smtp = None
                except (smtplib.SMTPException, OSError) as exc:
                    _LOGGER.warning("notice mail %s: %s", mail.ref, type(exc).__name__)
                    out.append(Outcome(mail.ref, "failed", None))
                    smtp = None
        finally:
            if smtp is not None:
                with contextlib.suppress(smtplib.SMTPException, OSError):
                    smtp.quit()
        return out

    async def send_batch(self, mails: Sequence[Notice]) -> list[Outcome]:
        """Send ``mails`` over up to ``connections`` parallel connections; outcomes in order."""
        chunks = [mails[i:i + self.batch] for i in range(0, len(mails), self.batch)]
        limit = asyncio.Semaphore(self.connections)

        async def one(chunk: Sequence[Notice]) -> list[Outcome]:
            async with limit:
                return await asyncio.to_thread(self._send_chunk, chunk)

        results = await asyncio.gather(*(one(c) for c in chunks))
        return [o for r in results for o in r]


class MemoryMailer:
    """Demo only (like ``hub.notify.senders.MemorySink``): keeps the messages in this process's
    memory for the demo's mail page; every message counts as accepted."""

    def __init__(self, box: deque[SinkMessage]) -> None:
        self.box = box

    async def send_batch(self, mails: Sequence[Notice]) -> list[Outcome]:
        for m in mails:
            self.box.append(SinkMessage(now_utc(), "email", m.to, m.lang, m.subject, m.body))
        return [Outcome(m.ref, "sent", 250) for m in mails]


class NoMailer:
    """E-mail is off (no ``MADOGUCHI_SMTP_URL``): every message fails, so staff see "failed"
    on every recipient instead of a notice that silently went nowhere."""

    async def send_batch(self, mails: Sequence[Notice]) -> list[Outcome]:
        return [Outcome(m.ref, "failed", None) for m in mails]


def mailer_for(app: web.Application, settings: HubSettings) -> Mailer:
    """SMTP when configured; in ``madoguchi demo`` (no SMTP, the notify module's memory sink)
    the demo's mail box; else ``NoMailer``. Chosen at the first mail, not at setup: the hub
    sets the notifier (and the demo its sink) after the modules' setup has run."""
    if settings.smtp_url:
        return SmtpMailer(settings.smtp_url, settings.smtp_from)
    return AppMailer(app)


class AppMailer:
    """Resolves the demo's memory sink (or nothing) when a batch is sent."""

    def __init__(self, app: web.Application) -> None:
        self.app = app

    async def send_batch(self, mails: Sequence[Notice]) -> list[Outcome]:
        notifier = self.app.get(NOTIFIER)
        sink = notifier.senders.get("email") if notifier is not None else None
        chosen: Mailer = MemoryMailer(sink.box) if isinstance(sink, MemorySink) else NoMailer()
        return await chosen.send_batch(mails)
