"""A notice portal to test against: the hub's app (its access guard and security headers) with
the portal's routes and templates added when ``hub.notices`` is not registered yet, a
``Notices`` with a memory mailer and a clock the test moves, and notice, recipient and file rows
inserted directly (personal fields sealed as ``hub.notices.records`` does)."""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import Boolean, Integer, Table, select

from hub.audit.tables import audit_log
from hub.kit.mail import MemoryMailer
from hub.notices import portal_auth, records
from hub.notices.context import NOTICES, Notices, NoticeSettings
from hub.notices.tables import notice_files, notice_recipients, notices
from hub.notify.senders import SinkMessage
from hub.settings import HubSettings
from hub.store import HubStore
from hub.store.schema import UtcDateTime
from hub.web.app import create_app

SETTINGS = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1",
                       public_url="https://ward.example", cookie_secure=False)
T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


@dataclass
class Portal:
    client: TestClient  # type: ignore[type-arg]
    ctx: Notices
    clock: Clock
    box: deque[SinkMessage] = field(default_factory=deque)

    def mails(self) -> list[SinkMessage]:
        return list(self.box)

    def last_code(self) -> str:
        match = re.search(r"\b(\d{6})\b", self.box[-1].body)
        assert match is not None, "no code in the last mail"
        return match.group(1)

    async def csrf(self, token: str) -> str:
        """Open the token's page as a browser does; returns its form's CSRF value."""
        async with self.client.get(f"/n/{token}") as r:
            return form_csrf(await r.text())

    async def post(self, path: str, data: dict[str, str] | None = None,
                   csrf: str | None = None) -> tuple[int, str, Any]:
        form = dict(data or {})
        if csrf is not None:
            form["csrf"] = csrf
        async with self.client.post(path, data=form, allow_redirects=False) as r:
            return r.status, await r.text(), r.headers


def form_csrf(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None, "no csrf field on the page"
    return match.group(1)


@asynccontextmanager
async def portal_app(tmp_path: Path, store_url: str | None = None,
                     schema: str | None = None) -> AsyncIterator[Portal]:
    store = await HubStore.open(store_url or f"sqlite:///{tmp_path}/hub.db", schema=schema)
    app = create_app(store, None, SETTINGS)
    clock = Clock()
    box: deque[SinkMessage] = deque()
    ctx = Notices.build(store, SETTINGS,
                        NoticeSettings(files_dir=tmp_path / "files",
                                       test_addresses=("staff-a@city.example",)),
                        MemoryMailer(box))
    ctx.clock = clock
    app[NOTICES] = ctx
    client: TestClient = TestClient(TestServer(app))  # type: ignore[type-arg]
    await client.start_server()
    try:
        yield Portal(client, ctx, clock, box)
    finally:
        await client.close()
        await store.close()


def complete(table: Table, now: datetime, values: dict[str, Any]) -> dict[str, Any]:
    """``values`` plus a plain value for every other required column (other parts of the module
    add columns to these tables; a row here must not break when they do)."""
    out = dict(values)
    for column in table.columns:
        if column.name in out or column.nullable or column.default is not None \
                or column.server_default is not None:
            continue
        kind = column.type
        out[column.name] = (0 if isinstance(kind, Integer) else False if isinstance(
            kind, Boolean) else now if isinstance(kind, UtcDateTime) else "{}"
            if column.name == "figures" else "")
    return out


async def add_notice(ctx: Notices, *, auth: str = "link", test_mode: bool = False,
                     title: str = "固定資産税の減額決定通知",
                     message_ja: str = "**ご確認ください。**",
                     message_en: str = "Please read.", test_addresses: tuple[str, ...] = (),
                     pdf_mode: str = "per_recipient") -> str:
    nid = records.new_id()
    now = ctx.clock()
    async with ctx.store.begin() as tx:
        await tx.conn.execute(notices.insert().values(**complete(notices, now, dict(
            id=nid, department="tax", title=title, description="", message_ja=message_ja,
            message_en=message_en, contact="email", auth=auth, remind_after_days=None,
            remind_max=0, retention_days=90, test_mode=test_mode,
            test_addresses=records.seal_field(ctx, nid, "test_addresses",
                                              json.dumps(list(test_addresses))),
            status="sent", pdf_mode=pdf_mode, split="", signatures=0, created_at=now,
            created_by="staff:1", updated_at=now, sent_at=now))))
    return nid


async def add_file(ctx: Notices, notice_id: str, data: bytes, *, kind: str = "part",
                   signed: bool = True, pages: int = 1) -> str:
    fid = records.new_id()
    sha = await ctx.files.put(fid, data)
    async with ctx.store.begin() as tx:
        await tx.conn.execute(notice_files.insert().values(**complete(
            notice_files, ctx.clock(), dict(
            id=fid, notice_id=notice_id, kind=kind, signed=signed, part_index=None,
            first_page=None, pages=pages, match_key=records.seal_field(ctx, fid, "key", ""),
            size=len(data), sha256=sha, created_at=ctx.clock()))))
    return fid


async def add_recipient(ctx: Notices, notice_id: str, *, name: str, email: str, line: int = 1,
                        lang: str = "ja", file_id: str | None = None,
                        link_days: int = 30) -> tuple[str, str]:
    """A recipient whose link was mailed; returns (recipient id, link token)."""
    rid = records.new_id()
    token = portal_auth.new_link_token()
    now = ctx.clock()
    async with ctx.store.begin() as tx:
        await tx.conn.execute(notice_recipients.insert().values(**complete(
            notice_recipients, now, dict(
            id=rid, notice_id=notice_id, line=line,
            name=records.seal_field(ctx, rid, "name", name),
            email=records.seal_field(ctx, rid, "email", email),
            email_hmac=records.email_hmac(ctx, email),
            match_key=records.seal_field(ctx, rid, "key", f"K{line:04d}"),
            data=records.seal_field(ctx, rid, "data", json.dumps({"氏名": name})),
            lang=lang, file_id=file_id, status="sent", smtp_code=250, sent_at=now,
            downloads=0, contacts=1, last_contact_at=now,
            link_hash=portal_auth.link_hash(token),
            link_expires_at=now + timedelta(days=link_days), code_tries=0, codes_sent=0,
            updated_at=now))))
    return rid, token


async def recipient(ctx: Notices, rid: str) -> Any:
    async with ctx.store.read() as tx:
        return (await tx.conn.execute(select(notice_recipients).where(
            notice_recipients.c.id == rid))).one()


async def notice_row(ctx: Notices, nid: str) -> Any:
    async with ctx.store.read() as tx:
        return (await tx.conn.execute(select(notices).where(notices.c.id == nid))).one()


async def audit_rows(ctx: Notices, action: str) -> list[Any]:
    async with ctx.store.read() as tx:
        return list((await tx.conn.execute(select(audit_log).where(
            audit_log.c.action == action).order_by(audit_log.c.id))).all())


def pdf(label: str) -> bytes:
    """A small stand-in for a signed PDF (the portal serves bytes; it never parses them)."""
    return (b"%PDF-1.7\n% " + label.encode() + b"\n" + bytes(range(256)) * 4
            + b"\n%%EOF\n")
