"""A hub to test the notice staff pages against: the hub's app (access guard, CSRF, security
headers, static files) with the notice routes and templates added when ``hub.notices`` is not
registered in ``hub.web.app`` yet, a ``Notices`` with a memory mailer, and signed-in notice
staff per department."""

from __future__ import annotations

import re
from collections import deque
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from aiohttp.test_utils import TestClient, TestServer
from sqlalchemy import func, select
from staff_support import staff_cookie

from hub.audit.tables import audit_log
from hub.kit.mail import MemoryMailer
from hub.notices.context import NOTICES, Notices, NoticeSettings
from hub.notices.tables import notice_recipients, notices
from hub.notify.senders import SinkMessage
from hub.settings import HubSettings
from hub.store import HubStore
from hub.web.app import create_app

SETTINGS = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1",
                       public_url="https://ward.example", cookie_secure=False)


@dataclass
class StaffHub:
    client: TestClient  # type: ignore[type-arg]
    ctx: Notices
    url: str
    box: deque[SinkMessage] = field(default_factory=deque)

    async def cookie(self, department: str, role: str = "notice_staff") -> dict[str, str]:
        return await staff_cookie(self.ctx.store, SETTINGS, role, department)

    async def count(self, table: Any, **where: str) -> int:
        q = select(func.count()).select_from(table)
        for k, v in where.items():
            q = q.where(table.c[k] == v)
        async with self.ctx.store.read() as tx:
            return int((await tx.conn.execute(q)).scalar() or 0)

    async def audits(self, action: str) -> list[Any]:
        async with self.ctx.store.read() as tx:
            return list((await tx.conn.execute(select(audit_log).where(
                audit_log.c.action == action).order_by(audit_log.c.id))).all())


def csrf_of(html: str) -> str:
    match = re.search(r'name="csrf" value="([^"]+)"', html)
    assert match is not None, "no csrf field on the page"
    return match.group(1)


@asynccontextmanager
async def staff_hub(tmp_path: Path) -> AsyncIterator[StaffHub]:
    store = await HubStore.open(f"sqlite:///{tmp_path}/hub.db")
    app = create_app(store, None, SETTINGS)
    box: deque[SinkMessage] = deque()
    ctx = Notices.build(store, SETTINGS, NoticeSettings(files_dir=tmp_path / "files"),
                        MemoryMailer(box))
    app[NOTICES] = ctx
    server = TestServer(app)
    client: TestClient = TestClient(server)  # type: ignore[type-arg]
    await client.start_server()
    try:
        yield StaffHub(client, ctx, str(server.make_url("")).rstrip("/"), box)
    finally:
        await client.close()
        await store.close()


__all__ = ["SETTINGS", "StaffHub", "csrf_of", "notice_recipients", "notices", "staff_hub"]
