"""The reminder rule (N7): unopened recipients are mailed again after N days, at most M times,
and two hub processes running the rule at once send each person one reminder, not two."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from notices_portal_support import Portal, add_file, add_notice, add_recipient, pdf, portal_app
from sqlalchemy import select, update

from hub.notices import sending
from hub.notices.tables import notice_recipients, notices


@pytest.fixture
async def p(tmp_path: Path) -> AsyncIterator[Portal]:
    async with portal_app(tmp_path) as made:
        yield made


async def test_two_processes_at_once_send_one_reminder_each(p: Portal) -> None:
    nid = await add_notice(p.ctx, auth="code")
    async with p.ctx.store.begin() as tx:
        await tx.conn.execute(update(notices).where(notices.c.id == nid).values(
            remind_after_days=3, remind_max=1))
    for i in range(6):
        fid = await add_file(p.ctx, nid, pdf(f"r{i}"))
        await add_recipient(p.ctx, nid, name=f"住民{i}", email=f"r{i}@example.jp", line=i + 1,
                            file_id=fid)
    async with p.ctx.store.begin() as tx:  # one has opened: never reminded
        await tx.conn.execute(update(notice_recipients).where(
            notice_recipients.c.line == 1).values(opened_at=p.clock.now))
    p.clock.advance(days=2)
    assert await sending.remind_due(p.ctx) == 0  # not due yet
    p.clock.advance(days=2)
    counts = await asyncio.gather(sending.remind_due(p.ctx), sending.remind_due(p.ctx))
    assert sum(counts) == 5
    assert sorted(m.to for m in p.mails()) == [f"r{i}@example.jp" for i in range(1, 6)]
    p.clock.advance(days=4)
    assert await sending.remind_due(p.ctx) == 0  # remind_max = 1: no third mail


async def test_a_sending_job_left_by_a_dead_process_is_resumed_once(p: Portal) -> None:
    nid = await add_notice(p.ctx, auth="code")
    for i in range(4):
        fid = await add_file(p.ctx, nid, pdf(f"r{i}"))
        await add_recipient(p.ctx, nid, name=f"住民{i}", email=f"r{i}@example.jp", line=i + 1,
                            file_id=fid)
    async with p.ctx.store.begin() as tx:  # a job that died after its first mail
        await tx.conn.execute(update(notices).where(notices.c.id == nid).values(
            status="sending", updated_at=p.clock.now))
        await tx.conn.execute(update(notice_recipients).where(
            notice_recipients.c.line > 1).values(status="pending", contacts=0))
    assert await sending.resume_stale(p.ctx) == 0  # its heartbeat is fresh: maybe alive
    p.clock.advance(minutes=6)
    resumed = await asyncio.gather(sending.resume_stale(p.ctx), sending.resume_stale(p.ctx))
    assert sorted(resumed) == [0, 1]
    assert sorted(m.to for m in p.mails()) == [f"r{i}@example.jp" for i in range(1, 4)]
    async with p.ctx.store.read() as tx:
        status = (await tx.conn.execute(select(notices.c.status).where(
            notices.c.id == nid))).scalar_one()
    assert status == "sent"
