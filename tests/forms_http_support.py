"""A business system's webhook receiver for the forms tests: a real aiohttp server on a free port
that checks each delivery with ``hub.forms.webhook.verify`` (as a ward's vendor would), answers
from a script of statuses (e.g. one injected 500), and processes each ``Webhook-Id`` once."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from aiohttp import web
from conftest import free_port

from hub.forms.webhook import WebhookRefused, verify


@dataclass
class Attempt:
    msg_id: str
    timestamp: str
    signature: str
    body: bytes
    refused: str | None  # the verify() code, None when the signature was good
    answered: int


class WebhookReceiver:
    """``script``: statuses for the first requests (then 200); ``delay_s``: sleep before
    answering (timeouts). ``accepted`` holds each verified event once, by ``Webhook-Id``."""

    def __init__(self, secrets: str | Sequence[str], now: Callable[[], datetime],
                 script: Sequence[int] = (), delay_s: float = 0.0) -> None:
        self.secrets, self.now = secrets, now
        self.script, self.delay_s = list(script), delay_s
        self.port = free_port()
        self.attempts: list[Attempt] = []
        self.accepted: dict[str, dict[str, Any]] = {}
        self.runner: web.AppRunner | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hooks/forms"

    async def _handle(self, request: web.Request) -> web.Response:
        body = await request.read()
        h = request.headers
        try:
            msg_id: str | None = verify(self.secrets, h, body, self.now())
            refused = None
        except WebhookRefused as exc:
            msg_id, refused = None, exc.code
        status = 401 if refused else (self.script.pop(0) if self.script else 200)
        self.attempts.append(Attempt(h.get("Webhook-Id", ""), h.get("Webhook-Timestamp", ""),
                                     h.get("Webhook-Signature", ""), body, refused, status))
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        if status == 200 and msg_id is not None and msg_id not in self.accepted:
            self.accepted[msg_id] = json.loads(body)
        return web.json_response({"ok": status == 200}, status=status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hooks/forms", self._handle)
        self.runner = web.AppRunner(app)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()
