"""Forms and submissions for the staff-side tests, written straight into the tables (as the
resident pages would, with answers, contact, comments and attachments sealed the same way), a
``Forms`` over a SQLite or PostgreSQL store with a memory mailer, and the hub app with signed-in
form staff."""

from __future__ import annotations

import json
import re
import secrets
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, insert, select
from staff_support import staff_cookie

from hub.audit.tables import audit_log
from hub.forms.attachments import AttachmentIntake
from hub.forms.context import FORMS, Forms, FormSettings
from hub.forms.deliveries import seal_secrets
from hub.forms.records import email_hmac, new_form_id, new_id, seal_field, seal_json
from hub.forms.scan import ClamdClient
from hub.forms.tables import form_files, form_submissions, form_versions, forms
from hub.forms.versions import parse_form, publish
from hub.kit.mail import MemoryMailer
from hub.notify.senders import SinkMessage
from hub.settings import HubSettings
from hub.store import HubStore
from hub.web.app import create_app

SETTINGS = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1",
                       public_url="https://ward.example", cookie_secure=False)
T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)
DEPT = "kosodate"


def definition(form_id: str, retention_days: int = 365) -> dict[str, Any]:
    return {"id": form_id, "title": {"ja": "保育園入園申込", "en": "Nursery application"},
            "retention_days": retention_days, "pages": [{
                "id": "p1", "title": {"ja": "申込者", "en": "Applicant"}, "fields": [
                    {"type": "name", "id": "name", "label": {"ja": "氏名", "en": "Name"}},
                    {"type": "date", "id": "birth", "display": "wareki",
                     "label": {"ja": "生年月日", "en": "Date of birth"}},
                    {"type": "choice", "id": "kind", "label": {"ja": "種別", "en": "Kind"},
                     "options": [{"value": "new", "label": {"ja": "新規", "en": "New"}},
                                 {"value": "move", "label": {"ja": "転園", "en": "Move"}}]},
                    {"type": "long_text", "id": "note", "required": False,
                     "label": {"ja": "備考", "en": "Notes"}},
                    {"type": "file", "id": "doc", "required": False,
                     "label": {"ja": "就労証明書", "en": "Proof of work"}}]}]}


class Clock:
    """``ctx.clock`` that tests move."""

    def __init__(self, now: datetime = T0) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def move(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def make_ctx(store: HubStore, tmp_path: Path, box: deque[SinkMessage] | None = None,
             clock: Clock | None = None, scanner: ClamdClient | None = None) -> Forms:
    """``scanner``: a real clamd's client when the test uploads files (none answers on port
    9: every upload would be refused, fail closed)."""
    settings = FormSettings(files_dir=tmp_path / "form-files", webhook_allow_private=True)
    intake = AttachmentIntake.open(settings.files_dir, SETTINGS.keys, SETTINGS.key_id,
                                   scanner or ClamdClient.from_address("127.0.0.1:9"))
    return Forms(store, SETTINGS, settings, intake, MemoryMailer(box if box is not None
                                                                 else deque()),
                 clock or Clock())


async def add_form(ctx: Forms, *, department: str = DEPT, webhook_url: str = "",
                   secrets_: list[str] | None = None, notify: list[str] | None = None,
                   retention_days: int = 365) -> str:
    """A published form (version 1) written straight into the tables."""
    form_id = new_form_id()
    draft = parse_form(definition(form_id, retention_days))
    v1 = publish(draft, 1)
    now = ctx.clock()
    async with ctx.store.begin() as tx:
        await tx.conn.execute(insert(forms).values(
            id=form_id, department=department, title="保育園入園申込",
            draft=json.dumps(definition(form_id, retention_days), ensure_ascii=False),
            status="published", published_version=1, webhook_url=webhook_url,
            webhook_secrets=seal_secrets(ctx, form_id, secrets_ or []),
            notify_staff=seal_json(ctx, form_id, "notify_staff", notify or []),
            created_at=now, created_by="builder", updated_at=now))
        await tx.conn.execute(insert(form_versions).values(
            form_id=form_id, version=1, definition=v1.model_dump_json(), digest="d" * 64,
            published_at=now, published_by="builder"))
    return form_id


ANSWERS = {"name": {"family": "山田", "given": "花子", "family_kana": "ヤマダ",
                    "given_kana": "ハナコ"},
           "birth": "2020-04-01", "kind": "new", "note": "髙橋さんと同じ園を希望 — 𠮷"}


async def add_submission(ctx: Forms, form_id: str, *, answers: dict[str, Any] | None = None,
                         contact: str = "hanako@example.jp", lang: str = "ja",
                         status: str = "received", files: dict[str, bytes] | None = None,
                         retention_days: int = 365) -> tuple[str, str]:
    """A submission (and its attachments as ``{filename: bytes}`` of field ``doc``);
    returns (id, reference)."""
    sid = new_id()
    reference = f"F-2026-{secrets.randbelow(10**6):06d}"
    now = ctx.clock()
    async with ctx.store.begin() as tx:
        await tx.conn.execute(insert(form_submissions).values(
            id=sid, form_id=form_id, version=1, reference=reference, status=status,
            channel="web", answers=seal_json(ctx, sid, "answers", answers or ANSWERS),
            contact=seal_field(ctx, sid, "contact", contact),
            email_hmac=email_hmac(ctx, contact) if contact else "", identity_key="",
            lang=lang, payment="none", created_at=now, updated_at=now, submitted_at=now,
            purge_after=now + timedelta(days=retention_days)))
        for name, data in (files or {}).items():
            blob = secrets.token_urlsafe(18)
            sha = await ctx.intake.store.put(blob, data)
            await tx.conn.execute(insert(form_files).values(
                id=blob, form_id=form_id, draft_id=None, submission_id=sid, field="doc",
                filename=seal_field(ctx, blob, "filename", name),
                content_type="application/pdf" if data.startswith(b"%PDF") else "image/png",
                size=len(data), sha256=sha, created_at=now))
    return sid, reference


async def audits(store: HubStore, action: str) -> list[Any]:
    async with store.read() as tx:
        return list((await tx.conn.execute(select(audit_log).where(
            audit_log.c.action == action).order_by(audit_log.c.id))).all())


async def count(store: HubStore, table: Any, **where: str) -> int:
    q = select(func.count()).select_from(table)
    for k, v in where.items():
        q = q.where(table.c[k] == v)
    async with store.read() as tx:
        return int((await tx.conn.execute(q)).scalar() or 0)


PDF = b"%PDF-1.4\n1 0 obj<<>>endobj\ntrailer<<>>\n%%EOF\n"


@dataclass
class StaffHub:
    client: TestClient  # type: ignore[type-arg]
    ctx: Forms
    clock: Clock
    box: deque[SinkMessage] = field(default_factory=deque)

    async def cookie(self, department: str = DEPT, role: str = "form_staff") -> dict[str, str]:
        return await staff_cookie(self.ctx.store, SETTINGS, role, department)


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None, "no csrf field on the page"
    return match.group(1)


@asynccontextmanager
async def staff_hub(tmp_path: Path,
                    scanner: ClamdClient | None = None) -> AsyncIterator[StaffHub]:
    store = await HubStore.open(f"sqlite:///{tmp_path}/hub.db")
    app = create_app(store, None, SETTINGS)
    box: deque[SinkMessage] = deque()
    clock = Clock()
    ctx = make_ctx(store, tmp_path, box, clock, scanner)
    app[FORMS] = ctx
    client: TestClient = TestClient(TestServer(app))  # type: ignore[type-arg]
    await client.start_server()
    try:
        yield StaffHub(client, ctx, clock, box)
    finally:
        await client.close()
        await store.close()
