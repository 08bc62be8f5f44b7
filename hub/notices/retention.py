"""Retention per notice (seed 000 別紙, A4): after ``purge_after`` (sent + the notice's
retention days) the recipients' rows and every PDF are deleted; the notice row stays with its
figures frozen in ``figures`` (N7: how many were sent, opened, signed), so the ward's counts
outlive the personal data. Runs hourly in the hub's background (``purge_loop``) and can be run
at once for a notice by its staff (closing early does not purge: the portal keeps working
until the retention ends).
"""

from __future__ import annotations

import asyncio
import json
import logging
from dataclasses import asdict

from sqlalchemy import delete, select, update

from hub.auth.service import audit_in
from hub.notices.context import Notices
from hub.notices.service import figures
from hub.notices.tables import notice_files, notice_recipients, notices

_LOGGER = logging.getLogger(__name__)
EVERY_S = 3600.0


async def purge(ctx: Notices, notice_id: str, actor: str = "system") -> int:
    """Delete the notice's personal data and PDFs; returns the number of files deleted."""
    counts = await figures(ctx, notice_id)
    async with ctx.store.begin() as tx:
        blobs = [str(r[0]) for r in (await tx.conn.execute(select(notice_files.c.id).where(
            notice_files.c.notice_id == notice_id))).all()]
        await tx.conn.execute(delete(notice_recipients).where(
            notice_recipients.c.notice_id == notice_id))
        await tx.conn.execute(delete(notice_files).where(notice_files.c.notice_id == notice_id))
        now = ctx.clock()
        await tx.conn.execute(update(notices).where(notices.c.id == notice_id).values(
            purged_at=now, updated_at=now, status="closed",
            closed_at=now,
            figures=json.dumps(asdict(counts)), test_addresses=""))
        await audit_in(tx, ctx.hub, actor=actor, action="notice_purged", target=notice_id,
                       detail={"files": len(blobs), "recipients": counts.recipients})
    for blob in blobs:  # after the commit: a crash here leaves unreadable orphans, no rows
        await ctx.files.delete(blob)
    return len(blobs)


async def purge_due(ctx: Notices) -> int:
    now = ctx.clock()
    async with ctx.store.read() as tx:
        due = [str(r[0]) for r in (await tx.conn.execute(select(notices.c.id).where(
            notices.c.purge_after.is_not(None), notices.c.purge_after <= now,
            notices.c.purged_at.is_(None)))).all()]
    for notice_id in due:
        await purge(ctx, notice_id)
    return len(due)


async def purge_loop(ctx: Notices, every_s: float = EVERY_S) -> None:
    while True:
        try:
            n = await purge_due(ctx)
            if n:
                _LOGGER.info("notice retention: %d notice(s) purged", n)
        except Exception:  # the next pass tries again; a failure must not end the task
            _LOGGER.exception("notice retention: a pass failed")
        await asyncio.sleep(every_s)
