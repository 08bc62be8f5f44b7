"""Message sinks for tests: a real SMTP server (aiosmtpd) and a local HTTP SMS gateway speaking
the adapter's contract, each keeping what it accepted. The notice, fleet-alert and reservation
tests send through the product's own senders to them."""

from __future__ import annotations

import email
import email.message
import email.policy
from typing import Any

from aiohttp import web
from aiosmtpd.controller import Controller
from conftest import free_port


class SmtpSink:
    """Start with ``.controller.start()``, stop with ``.controller.stop()``."""

    def __init__(self) -> None:
        self.messages: list[tuple[list[str], email.message.EmailMessage]] = []
        self.refuse: set[str] = set()  # addresses answered "550" at RCPT (a bounce)
        self.controller = Controller(self, hostname="127.0.0.1", port=free_port())

    async def handle_RCPT(self, _server: Any, _session: Any, envelope: Any, address: str,
                          _options: Any) -> str:
        if address.lower() in self.refuse:
            return "550 5.1.1 mailbox unavailable"
        envelope.rcpt_tos.append(address)
        return "250 OK"

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


class SmsGateway:
    """A local HTTP gateway speaking the adapter's contract; records what it accepted."""

    def __init__(self) -> None:
        self.port = free_port()
        self.received: list[tuple[str, dict[str, Any]]] = []
        self.runner: web.AppRunner | None = None

    async def start(self) -> None:
        async def post(request: web.Request) -> web.Response:
            self.received.append((request.headers.get("Authorization", ""),
                                  await request.json()))
            return web.json_response({"id": str(len(self.received))}, status=202)

        app = web.Application()
        app.router.add_post("/sms", post)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/sms"
