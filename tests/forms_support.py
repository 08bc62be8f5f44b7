"""The residents' form pages to test against: the hub's app (its access guard, security headers
and the forms module's routes) with a ``Forms`` over a SQLite or PostgreSQL store, a real clamd
(``clamd_support``), a memory mailer and a clock the test moves; published forms written
straight into the tables; a ``Resident`` that browses like a phone (cookies, CSRF field)."""

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

import aiohttp
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, insert, select, update

from hub.audit.tables import audit_log
from hub.forms.attachments import AttachmentIntake
from hub.forms.context import FORMS, Forms, FormSettings
from hub.forms.records import new_form_id, seal_json
from hub.forms.resident_http import CSRF_COOKIE
from hub.forms.scan import ClamdClient
from hub.forms.tables import form_versions, forms
from hub.forms.versions import parse_form, publish
from hub.kit.mail import MemoryMailer
from hub.notify.senders import SinkMessage
from hub.settings import HubSettings
from hub.store import HubStore
from hub.web.app import create_app

SETTINGS = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1",
                       public_url="https://ward.example", cookie_secure=False)
T0 = datetime(2026, 12, 1, 1, 0, tzinfo=UTC)
PHONE_UA = ("Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X) AppleWebKit/605.1.15 "
            "(KHTML, like Gecko) Version/17.0 Mobile/15E148 Safari/604.1")


@dataclass
class Clock:
    now: datetime = T0

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kw: float) -> None:
        self.now += timedelta(**kw)


def simple(form_id: str, *, identity: str = "anonymous", retention_days: int = 365,
           title: str = "犬の登録") -> dict[str, Any]:
    """Three pages: applicant (name, e-mail), a choice that shows page "details" only for
    "yes", and a last page with an optional attachment and a consent."""
    yes_no = [{"value": "yes", "label": {"ja": "はい", "en": "Yes"}},
              {"value": "no", "label": {"ja": "いいえ", "en": "No"}}]
    return {
        "id": form_id, "title": {"ja": title, "en": "Dog registration"},
        "description": {"ja": "飼い犬の登録の申請です。", "en": "Register your dog."},
        "retention_days": retention_days, "identity": identity,
        "pages": [
            {"id": "p1", "title": {"ja": "申請者", "en": "Applicant"}, "fields": [
                {"type": "name", "id": "nm", "label": {"ja": "氏名", "en": "Name"}},
                {"type": "email", "id": "mail", "required": False, "prefill": "email",
                 "label": {"ja": "メールアドレス", "en": "E-mail"}},
                {"type": "choice", "id": "has_dog", "options": yes_no,
                 "label": {"ja": "犬を飼っていますか", "en": "Do you have a dog?"}}]},
            {"id": "p2", "title": {"ja": "犬について", "en": "The dog"},
             "condition": {"field": "has_dog", "op": "equals", "value": "yes"},
             "fields": [{"type": "text", "id": "dog", "label": {"ja": "犬の名前",
                                                                "en": "Dog's name"}}]},
            {"id": "p3", "title": {"ja": "書類と同意", "en": "Documents"}, "fields": [
                {"type": "file", "id": "doc", "required": False,
                 "label": {"ja": "証明書", "en": "Certificate"}},
                {"type": "consent", "id": "ok", "label": {"ja": "同意", "en": "Consent"},
                 "text": {"ja": "内容に誤りはありません", "en": "The answers are true"}}]},
        ]}


async def add_form(ctx: Forms, definition: dict[str, Any] | None = None, *,
                   webhook_url: str = "", notify: list[str] | None = None,
                   department: str = "seikatsu") -> str:
    """A published form (version 1) written into the tables as the builder does."""
    form_id = new_form_id()
    body = dict(definition or simple(form_id))
    body["id"] = form_id
    now = ctx.clock()
    async with ctx.store.begin() as tx:
        await tx.conn.execute(insert(forms).values(
            id=form_id, department=department, title=body["title"]["ja"],
            draft=json.dumps(body, ensure_ascii=False), status="published",
            published_version=None, webhook_url=webhook_url,
            webhook_secrets=seal_json(ctx, form_id, "webhook_secrets", ["whsec_test"]),
            notify_staff=seal_json(ctx, form_id, "notify_staff", notify or []),
            created_at=now, created_by="builder", updated_at=now))
    await publish_version(ctx, form_id, body, 1)
    return form_id


async def publish_version(ctx: Forms, form_id: str, definition: dict[str, Any],
                          version: int) -> None:
    """Freeze ``definition`` as ``version`` and make it the one residents get."""
    frozen = publish(parse_form({**definition, "id": form_id}), version)
    now = ctx.clock()
    async with ctx.store.begin() as tx:
        await tx.conn.execute(insert(form_versions).values(
            form_id=form_id, version=version, definition=frozen.model_dump_json(),
            digest=f"{version:064d}", published_at=now, published_by="builder"))
        await tx.conn.execute(update(forms).where(forms.c.id == form_id).values(
            published_version=version, status="published"))


@dataclass
class Resident:
    client: TestClient  # type: ignore[type-arg]
    ctx: Forms
    clock: Clock
    box: deque[SinkMessage] = field(default_factory=deque)
    user_agent: str = PHONE_UA

    def mails(self, to: str | None = None) -> list[SinkMessage]:
        return [m for m in self.box if to is None or m.to == to]

    def last_code(self) -> str:
        match = re.search(r"\b(\d{6})\b", self.box[-1].body)
        assert match is not None, "no code in the last mail"
        return match.group(1)

    def csrf(self) -> str:
        for cookie in self.client.session.cookie_jar:
            if cookie.key == CSRF_COOKIE:
                return cookie.value
        raise AssertionError("no CSRF cookie yet: open a page first")

    async def get(self, path: str, **headers: str) -> tuple[int, str, Any]:
        async with self.client.get(path, allow_redirects=False, headers={
                "User-Agent": self.user_agent, **headers}) as r:
            return r.status, await r.text(), r.headers

    async def post(self, path: str, data: dict[str, Any] | list[tuple[str, str]] | None = None,
                   *, csrf: bool = True,
                   files: list[tuple[str, str, bytes, str]] | None = None
                   ) -> tuple[int, str, Any]:
        """POST a form (multipart when ``files``: (field, filename, bytes, type)); the CSRF
        field first, as the pages put it."""
        items: list[tuple[str, str]] = [("csrf", self.csrf())] if csrf else []
        items += list(data.items()) if isinstance(data, dict) else list(data or [])
        body: Any
        if files is not None:  # streamed: the CSRF token in the action URL, as the page does
            path += ("&" if "?" in path else "?") + f"csrf={self.csrf()}"
            body = aiohttp.FormData(quote_fields=False)  # UTF-8 names as browsers send
            for k, v in items:
                body.add_field(k, v)
            for name, filename, content, kind in files:
                body.add_field(name, content, filename=filename, content_type=kind)
        else:
            body = aiohttp.FormData(items)
        async with self.client.post(path, data=body, allow_redirects=False,
                                    headers={"User-Agent": self.user_agent}) as r:
            return r.status, await r.text(), r.headers

    async def follow(self, path: str, data: dict[str, Any] | list[tuple[str, str]] | None = None,
                     **kw: Any) -> tuple[int, str, Any]:
        """POST, then GET the 303's Location (as a browser does)."""
        status, text, headers = await self.post(path, data, **kw)
        if status != 303:
            return status, text, headers
        return await self.get(headers["Location"])


@asynccontextmanager
async def resident_app(tmp_path: Path, clamd: ClamdClient, store_url: str | None = None,
                       schema: str | None = None) -> AsyncIterator[Resident]:
    store = await HubStore.open(store_url or f"sqlite:///{tmp_path}/hub.db", schema=schema)
    app = create_app(store, None, SETTINGS)
    clock = Clock()
    box: deque[SinkMessage] = deque()
    settings = FormSettings(files_dir=tmp_path / "form-files")
    intake = AttachmentIntake.open(settings.files_dir, SETTINGS.keys, SETTINGS.key_id, clamd)
    ctx = Forms(store, SETTINGS, settings, intake, MemoryMailer(box), clock)
    app[FORMS] = ctx
    client: TestClient = TestClient(TestServer(app))  # type: ignore[type-arg]
    await client.start_server()
    try:
        yield Resident(client, ctx, clock, box)
    finally:
        await client.close()
        await store.close()


async def rows(store: HubStore, table: Any, **where: Any) -> list[Any]:
    q = select(table)
    for k, v in where.items():
        q = q.where(table.c[k] == v)
    async with store.read() as tx:
        return list((await tx.conn.execute(q)).all())


async def count(store: HubStore, table: Any, **where: Any) -> int:
    q = select(func.count()).select_from(table)
    for k, v in where.items():
        q = q.where(table.c[k] == v)
    async with store.read() as tx:
        return int((await tx.conn.execute(q)).scalar() or 0)


async def audits(store: HubStore, action: str) -> list[Any]:
    async with store.read() as tx:
        return list((await tx.conn.execute(select(audit_log).where(
            audit_log.c.action == action))).all())


def blobs(tmp_path: Path) -> list[Path]:
    """Every file in the sealed attachment store."""
    root = tmp_path / "form-files"
    return [p for p in root.rglob("*") if p.is_file()] if root.exists() else []
