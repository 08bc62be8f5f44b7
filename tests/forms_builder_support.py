"""The hub app for the form builder's tests: a SQLite store, a ``Forms`` with a memory mailer,
webhooks to 127.0.0.1 allowed (a business system inside the ward's network), and signed-in form
staff per department. Helpers post builder forms with the page's CSRF token and read back the
stored draft, versions and audit rows."""

from __future__ import annotations

import json
import re
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from aiohttp import ClientResponse
from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from staff_support import staff_cookie

from hub.audit.tables import audit_log
from hub.forms.attachments import AttachmentIntake
from hub.forms.context import FORMS, Forms, FormSettings
from hub.forms.model import Form
from hub.forms.scan import ClamdClient
from hub.forms.tables import form_versions, forms
from hub.forms.versions import parse_form
from hub.kit.mail import MemoryMailer
from hub.settings import HubSettings
from hub.store import HubStore
from hub.web.app import create_app

SETTINGS = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1",
                       public_url="https://ward.example", cookie_secure=False)
DEPT = "kosodate"


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None, "no csrf field on the page"
    return match.group(1)


@dataclass
class BuilderHub:
    client: TestClient  # type: ignore[type-arg]
    ctx: Forms
    cookies: dict[str, str]
    csrf: str = ""

    async def cookie(self, department: str = DEPT, role: str = "form_staff") -> dict[str, str]:
        return await staff_cookie(self.ctx.store, SETTINGS, role, department)

    async def sign_in(self, department: str = DEPT, role: str = "form_staff") -> None:
        self.cookies = await self.cookie(department, role)
        got = await self.client.get("/admin/forms?lang=ja", cookies=self.cookies)
        assert got.status == 200, got.status
        self.csrf = csrf_of(await got.text())

    async def get(self, path: str) -> ClientResponse:
        return await self.client.get(path, cookies=self.cookies, allow_redirects=False)

    async def post(self, path: str, data: dict[str, Any] | list[tuple[str, str]] | None = None
                   ) -> ClientResponse:
        items = list(data.items()) if isinstance(data, dict) else list(data or [])
        return await self.client.post(path, data=[("csrf", self.csrf), *items],
                                      cookies=self.cookies, allow_redirects=False)

    async def row(self, form_id: str) -> Any:
        async with self.ctx.store.read() as tx:
            return (await tx.conn.execute(select(forms).where(forms.c.id == form_id))).first()

    async def draft(self, form_id: str) -> Form:
        row = await self.row(form_id)
        return parse_form(json.loads(row.draft))

    async def versions(self, form_id: str) -> dict[int, str]:
        async with self.ctx.store.read() as tx:
            got = (await tx.conn.execute(select(form_versions.c.version,
                                                form_versions.c.definition)
                                         .where(form_versions.c.form_id == form_id))).all()
        return {int(v): str(d) for v, d in got}

    async def audits(self, action: str) -> list[Any]:
        async with self.ctx.store.read() as tx:
            return list((await tx.conn.execute(select(audit_log).where(
                audit_log.c.action == action).order_by(audit_log.c.id))).all())

    async def count_forms(self) -> int:
        async with self.ctx.store.read() as tx:
            return int((await tx.conn.execute(select(func.count()).select_from(forms)))
                       .scalar() or 0)


@asynccontextmanager
async def builder_hub(tmp_path: Path) -> AsyncIterator[BuilderHub]:
    store = await HubStore.open(f"sqlite:///{tmp_path}/hub.db")
    app = create_app(store, None, SETTINGS)
    settings = FormSettings(files_dir=tmp_path / "form-files", webhook_allow_private=True)
    intake = AttachmentIntake.open(settings.files_dir, SETTINGS.keys, SETTINGS.key_id,
                                   ClamdClient.from_address("127.0.0.1:9"))
    app[FORMS] = Forms(store, SETTINGS, settings, intake, MemoryMailer(deque()))
    server = TestServer(app)
    client: TestClient = TestClient(server)  # type: ignore[type-arg]
    await client.start_server()
    try:
        yield BuilderHub(client, app[FORMS], {})
    finally:
        await client.close()
        await store.close()


def form_id_of(location: str) -> str:
    match = re.match(r"/admin/forms/(f[0-9a-f]+)", location)
    assert match is not None, location
    return match.group(1)
