"""The forms end to end (issue 17, "Must show"): the hub app on a known port (so the links in
the mails work as they are), the forms module built the way the hub builds it
(``FormSettings.from_env``: a real clamd at ``MADOGUCHI_CLAMD``, webhooks to 127.0.0.1 allowed)
with the real SMTP mailer to an aiosmtpd sink and a clock the test moves (the webhook retry
delay), on SQLite or on PostgreSQL in a schema of its own; a webhook receiver that checks every
delivery with ``hub.forms.webhook.verify`` and answers 500 the first time; one delivery round.

Why not ``forms_support.resident_app``: its mailer is a memory one and its links point at a
public URL nobody serves; a browser needs both real.
"""

from __future__ import annotations

import email.message
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp import web
from aiohttp.test_utils import TestClient, TestServer
from conftest import free_port
from forms_builder_support import csrf_of
from forms_support import Resident
from mail_support import SmtpSink
from notices_e2e_support import body_of, mails_to
from playwright.async_api import Browser, BrowserContext, Page, ViewportSize
from sqlalchemy import func, select, text
from staff_support import staff_cookie

from hub.auth.guard import COOKIE
from hub.forms.context import FORMS, Forms, FormSettings
from hub.forms.deliveries import SqlDeliveries, deliver_round, sender_for
from hub.forms.localclamd import Clamd
from hub.forms.tables import form_deliveries
from hub.forms.webhook import Delivery, WebhookRefused, verify
from hub.kit.mail import SmtpMailer
from hub.settings import HubSettings
from hub.store import HubStore
from hub.store.store import now_utc
from hub.web.app import create_app

WIDE = ViewportSize(width=1366, height=768)  # staff
PHONE = ViewportSize(width=390, height=844)  # residents
SHOTS = Path(__file__).resolve().parents[1] / "test-artifacts" / "forms"
CODE = re.compile(r"(?<![\d-])(\d{6})(?![\d-])")  # not the digits of a reference F-2026-123456
RETURN_LINK = re.compile(r"(https?://[^\s/]+/f/[A-Za-z0-9]+/s/[A-Za-z0-9-]+)")


class MovingClock:
    """The wall clock plus an offset the test moves (``ctx.clock``): the retry delay of a
    webhook passes without waiting."""

    def __init__(self) -> None:
        self.offset = timedelta()

    def __call__(self) -> datetime:
        return now_utc() + self.offset

    def move(self, **delta: float) -> None:
        self.offset += timedelta(**delta)


@dataclass
class FormsHub:
    client: TestClient  # type: ignore[type-arg]
    ctx: Forms
    settings: HubSettings
    url: str  # http://127.0.0.1:port, also the hub's public URL (the links in the mails)
    clock: MovingClock
    files_dir: Path


@asynccontextmanager
async def forms_hub(tmp_path: Path, sink: SmtpSink, clamd: Clamd,
                    store_url: str | None = None, schema: str | None = None,
                    ) -> AsyncIterator[FormsHub]:
    """The hub app with the forms module configured from the environment an operator sets;
    on PostgreSQL (``store_url``, ``schema``: dropped afterwards) or a SQLite file."""
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    settings = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1", public_url=url,
                           cookie_secure=False)
    files_dir = tmp_path / "form-files"
    form_settings = FormSettings.from_env({
        "MADOGUCHI_CLAMD": f"{clamd.host}:{clamd.port}",
        "MADOGUCHI_FORMS_FILES": str(files_dir),
        "MADOGUCHI_FORMS_WEBHOOK_ALLOW_PRIVATE": "1"})
    store = await HubStore.open(store_url or f"sqlite:///{tmp_path}/hub.db", schema=schema)
    try:
        app = create_app(store, None, settings)
        ctx = Forms.build(store, settings, form_settings,
                          SmtpMailer(sink.url, "forms@city.example.jp"))
        clock = MovingClock()
        ctx.clock = clock
        app[FORMS] = ctx
        client: TestClient = TestClient(  # type: ignore[type-arg]
            TestServer(app, host="127.0.0.1", port=port))
        await client.start_server()
        try:
            yield FormsHub(client, ctx, settings, url, clock, files_dir)
        finally:
            await client.close()
    finally:
        if schema is not None:
            async with store.engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        await store.close()


async def deliver_once(ctx: Forms) -> list[Delivery]:
    """One round of the module's delivery loop (``hub.forms.jobs.deliveries_loop``'s body)."""
    repo = SqlDeliveries(ctx)
    sender = sender_for(ctx, repo)
    try:
        return await deliver_round(ctx, repo, sender)
    finally:
        await sender.close()


@dataclass
class Received:
    msg_id: str
    verified: bool  # the signature and timestamp checked out (hub.forms.webhook.verify)
    status: int  # what the receiver answered
    body: bytes


@dataclass
class WebhookReceiver:
    """A business system's endpoint: checks each delivery against ``secrets`` at the hub's
    clock, answers ``fail_first`` × 500 before answering 200, records every request."""

    clock: MovingClock
    secrets: list[str] = field(default_factory=list)
    fail_first: int = 1
    got: list[Received] = field(default_factory=list)
    port: int = field(default_factory=free_port)
    runner: web.AppRunner | None = None

    async def _post(self, request: web.Request) -> web.Response:
        body = await request.read()
        try:
            msg_id = verify(self.secrets, dict(request.headers), body, self.clock())
            verified = True
        except WebhookRefused:
            msg_id, verified = request.headers.get("Webhook-Id", ""), False
        status = 500 if len(self.got) < self.fail_first else (200 if verified else 401)
        self.got.append(Received(msg_id, verified, status, body))
        return web.Response(status=status)

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._post)
        self.runner = web.AppRunner(app, access_log=None)
        await self.runner.setup()
        await web.TCPSite(self.runner, "127.0.0.1", self.port).start()

    async def stop(self) -> None:
        if self.runner is not None:
            await self.runner.cleanup()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}/hook"

    def accepted(self) -> dict[str, int]:
        """Webhook-Id → how many correctly signed deliveries were accepted (200)."""
        out: dict[str, int] = {}
        for r in self.got:
            if r.verified and r.status == 200:
                out[r.msg_id] = out.get(r.msg_id, 0) + 1
        return out


def code_in(msg: email.message.EmailMessage) -> str:
    match = CODE.search(body_of(msg))
    assert match is not None, "no code in the mail"
    return match.group(1)


def return_link_in(msg: email.message.EmailMessage) -> str:
    match = RETURN_LINK.search(body_of(msg))
    assert match is not None, "no link to the returned application in the mail"
    return match.group(1)


def blobs(files_dir: Path) -> list[Path]:
    return sorted(p for p in files_dir.rglob("*") if p.is_file()) if files_dir.exists() else []


async def submit(page: Page, selector: str) -> None:
    """Click a submit button and wait for the page the POST leads to."""
    async with page.expect_navigation():
        await page.click(selector)


async def staff_context(browser: Browser, hub: FormsHub, department: str) -> BrowserContext:
    """A Chromium context at 1366×768 signed in as form staff of ``department``."""
    cookie = await staff_cookie(hub.ctx.store, hub.settings, "form_staff", department)
    ctx = await browser.new_context(viewport=WIDE, locale="ja-JP")
    await ctx.add_cookies([{"name": COOKIE, "value": cookie[COOKIE], "url": hub.url}])
    return ctx


async def add_field(page: Page, fid: str, pid: str, kind: str, **inputs: str) -> str:
    """Add a field of ``kind`` to page ``pid`` in the builder, open its settings, fill
    ``inputs`` (#f-<name> → value; "required" ticks the box), save; returns its id."""
    await page.select_option(f"[id='{pid}-type']", kind)
    await submit(page, f"form.add-field[action^='/admin/forms/{fid}/pages/{pid}/'] button")
    field_id = page.url.rsplit("#field-", 1)[1]
    await page.click(f"[id='field-{field_id}'] .row-actions a")
    await page.wait_for_selector("[data-testid=field-form]")
    for name, value in inputs.items():
        if name == "required":
            await page.check("#f-required")
        elif name == "allowed":
            for k in value.split(","):
                await page.check(f"input[name=allowed][value={k}]")
        else:
            await page.fill(f"#f-{name}", value)
    await submit(page, "[data-testid=field-form] button[type=submit]")
    assert "/fields/" not in page.url, await page.inner_text("main")  # back on the builder
    return field_id


async def sign_in(page: Page, sink: SmtpSink, address: str) -> None:
    """The e-mail code sign-in on the start page (or a returned submission's page)."""
    await page.fill("#email", address)
    before = len(sink.messages)
    await submit(page, "#send-code")
    await page.wait_for_selector("#code")
    mails = mails_to(sink, address, before)
    assert len(mails) == 1, [str(m["Subject"]) for m in mails]
    await page.fill("#code", code_in(mails[0]))
    await submit(page, "#verify")


async def fill_address(page: Page, addr: str, postal: str, street: str) -> None:
    await page.fill(f"[id='{addr}.postal']", postal)
    await page.select_option(f"[id='{addr}.prefecture']", "東京都")
    await page.fill(f"[id='{addr}.city']", "練馬区")
    await page.fill(f"[id='{addr}.street']", street)


async def staff_post(r: Resident, cookie: dict[str, str], path: str,
                      data: list[tuple[str, str]]) -> str:
    """A builder form as the page posts it (its CSRF field); returns the 303's Location."""
    async with r.client.get("/admin/forms?lang=ja", cookies=cookie) as got:
        token = csrf_of(await got.text())
    async with r.client.post(path, data=[("csrf", token), *data], cookies=cookie,
                             allow_redirects=False) as got:
        assert got.status == 303, (path, got.status, await got.text())
        return got.headers["Location"]


async def count_rows(hub: FormsHub, table: Any) -> int:
    async with hub.ctx.store.read() as tx:
        return int((await tx.conn.execute(select(func.count()).select_from(
            table))).scalar() or 0)


async def deliveries_of(hub: FormsHub) -> list[tuple[str, str, str]]:
    async with hub.ctx.store.read() as tx:
        got = (await tx.conn.execute(select(form_deliveries.c.id, form_deliveries.c.event_type,
                                            form_deliveries.c.status))).all()
    return [(str(i), str(e), str(s)) for i, e, s in got]


__all__ = ["PHONE", "SHOTS", "WIDE", "FormsHub", "MovingClock", "Received", "WebhookReceiver",
           "add_field", "blobs", "body_of", "code_in", "count_rows", "deliver_once",
           "deliveries_of", "fill_address", "forms_hub", "mails_to", "return_link_in",
           "sign_in", "staff_context", "staff_post", "submit"]
