"""A real SMTP server for tests (aiosmtpd) that keeps every message it accepts: the notice,
fleet-alert and reservation tests send through the product's own SMTP sender to it."""

from __future__ import annotations

import email
import email.message
import email.policy
from typing import Any

from aiosmtpd.controller import Controller
from conftest import free_port


class SmtpSink:
    """Start with ``.controller.start()``, stop with ``.controller.stop()``."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_DATA(self, _server: Any, _session: Any, envelope: Any) -> str:
        msg = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(msg, email.message.EmailMessage)
        self.messages.append((list(envelope.rcpt_tos), msg))
        return "250 OK"

    @property
    def url(self) -> str:
        return f"smtp://127.0.0.1:{self.controller.port}"

    def subjects(self) -> list[str]:
        return [str(m["Subject"]) for _r, m in self.messages]
