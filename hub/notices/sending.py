"""Sending notices: the first mail to every recipient, re-contacts of the unopened by hand, and
reminders by the notice's rule (N5–N7). No aiohttp here.

Every mail carries a fresh portal link (a random token; only its SHA-256 is stored), never the
PDF. A new contact replaces the recipient's link, so only the newest mail's link works (the
portal says so for an old one). The SMTP answer is stored per recipient: accepted → ``sent``,
5xx → ``bounced``, else ``failed`` (tried again by "send to the failed").

Work is done in batches of ``BATCH`` recipients: their mails go out, then their rows are updated
in one transaction, so a crash in the middle re-sends at most one batch, and the staff view
(which polls ``notices.updated_at``) moves batch by batch.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, or_, select, update

from hub.auth.service import audit_in
from hub.kit.mail import Outcome
from hub.notices import mailtext
from hub.notices.context import Notices
from hub.notices.portal_auth import link_hash, new_link_token
from hub.notices.records import addresses, open_field
from hub.notices.service import NoticeError, get, set_status
from hub.notices.tables import notice_recipients, notices
from hub.notify.senders import Notice

_LOGGER = logging.getLogger(__name__)

BATCH = 200
REMINDER_EVERY_S = 600.0
STALE_SENDING = timedelta(minutes=5)  # no batch of 200 mails takes this long


def _mails(ctx: Notices, notice: Any, rows: Sequence[Any],
           tokens: dict[str, str]) -> list[Notice]:
    out = []
    for row in rows:
        rid = str(row.id)
        name = open_field(ctx, rid, "name", row.name)
        url = f"{ctx.hub.public_url}/n/{tokens[rid]}"
        subject, body = mailtext.notice_mail(notice, name, url, ctx.settings.link_days,
                                             str(row.lang), int(row.contacts) > 0)
        for to in addresses(ctx, notice, row):
            out.append(Notice(rid, to, str(row.lang), subject, body))
    return out


async def _contact(ctx: Notices, notice: Any, rows: Sequence[Any]) -> list[Outcome]:
    """Mail ``rows`` a fresh link each and store every answer (one transaction per batch)."""
    now = ctx.clock()
    tokens = {str(r.id): new_link_token() for r in rows}
    outcomes = await ctx.mailer.send_batch(_mails(ctx, notice, rows, tokens))
    by_ref: dict[str, Outcome] = {}
    for o in outcomes:  # test mode: several mails per recipient; the worst answer counts
        if o.ref not in by_ref or by_ref[o.ref].status == "sent":
            by_ref[o.ref] = o
    expires = now + timedelta(days=ctx.settings.link_days)
    c = notice_recipients.c
    async with ctx.store.begin() as tx:
        for row in rows:
            rid = str(row.id)
            o = by_ref.get(rid, Outcome(rid, "failed", None))
            values: dict[str, Any] = {"status": o.status, "smtp_code": o.code,
                                      "updated_at": now}
            if o.status == "sent":
                values.update(sent_at=now, contacts=c.contacts + 1, last_contact_at=now,
                              link_hash=link_hash(tokens[rid]), link_expires_at=expires,
                              link_used_at=None)
            elif o.status == "bounced":
                values.update(bounced_at=now)
            await tx.conn.execute(update(notice_recipients).where(c.id == rid).values(**values))
        await tx.conn.execute(update(notices).where(notices.c.id == notice.id).values(
            updated_at=now))
    return list(by_ref.values())


async def send_all(ctx: Notices, notice_id: str, actor: str, ip: str | None) -> None:
    """``ready → sending``, mail every pending recipient in batches, then ``sent``."""
    await set_status(ctx, notice_id, ("ready",), "sending", actor, ip)
    await run_sending(ctx, notice_id)


async def run_sending(ctx: Notices, notice_id: str) -> None:
    """The sending job (also resumed at start for a notice left in ``sending`` by a crash)."""
    notice = await get(ctx, notice_id)
    c = notice_recipients.c
    total = done = 0
    progress = ctx.jobs.setdefault(notice_id, {})
    while True:
        async with ctx.store.read() as tx:
            if not total:
                total = len((await tx.conn.execute(select(c.id).where(
                    c.notice_id == notice_id, c.status == "pending"))).all())
            rows = (await tx.conn.execute(select(notice_recipients).where(
                c.notice_id == notice_id, c.status == "pending").order_by(c.line)
                .limit(BATCH))).all()
        if not rows:
            break
        await _contact(ctx, notice, rows)
        done += len(rows)
        progress.update(stage="sending", done=done, total=total)
        async with ctx.store.begin() as tx:  # the job's heartbeat: see resume_stale
            await tx.conn.execute(update(notices).where(notices.c.id == notice_id).values(
                updated_at=ctx.clock()))
    now = ctx.clock()
    async with ctx.store.begin() as tx:
        await tx.conn.execute(update(notices).where(
            notices.c.id == notice_id, notices.c.status == "sending").values(
            status="sent", sent_at=now, updated_at=now,
            purge_after=now + timedelta(days=int(notice.retention_days))))
    progress.update(stage="done", done=done, total=total)
    _LOGGER.info("notice %s: %d recipients tried", notice_id, done)


def _unopened(notice_id: str) -> Any:
    c = notice_recipients.c
    return and_(c.notice_id == notice_id, c.opened_at.is_(None),
                c.status.in_(("sent", "failed")))


async def recontact(ctx: Notices, notice_id: str, actor: str, ip: str | None,
                    recipient_ids: Sequence[str] | None = None, reason: str = "manual") -> int:
    """Mail the unopened again (all, or the chosen ones); returns how many were tried.
    Bounced addresses are not tried again (they need a corrected list)."""
    notice = await get(ctx, notice_id)
    if notice is None or notice.status not in ("sent",):
        raise NoticeError("wrong_status", "送信済みの通知だけ再連絡できます",
                          "Only a sent notice can be sent again")
    q = select(notice_recipients).where(_unopened(notice_id)).order_by(notice_recipients.c.line)
    if recipient_ids is not None:
        q = q.where(notice_recipients.c.id.in_(list(recipient_ids)))
    async with ctx.store.read() as tx:
        rows = (await tx.conn.execute(q)).all()
    tried = 0
    for i in range(0, len(rows), BATCH):
        outcomes = await _contact(ctx, notice, rows[i:i + BATCH])
        tried += len(outcomes)
    async with ctx.store.begin() as tx:
        await audit_in(tx, ctx.hub, actor=actor, action="notice_recontacted", target=notice_id,
                       ip=ip, detail={"count": tried, "reason": reason})
    return tried


async def remind_due(ctx: Notices) -> int:
    """One pass of the reminder rule over every sent notice: unopened recipients whose last
    contact is ``remind_after_days`` old and who had fewer than ``1 + remind_max`` contacts."""
    now = ctx.clock()
    async with ctx.store.read() as tx:
        due = (await tx.conn.execute(select(notices).where(
            notices.c.status == "sent", notices.c.remind_after_days.is_not(None),
            notices.c.purged_at.is_(None)))).all()
    total = 0
    c = notice_recipients.c
    for notice in due:
        cutoff = now - timedelta(days=int(notice.remind_after_days))
        due_now = and_(_unopened(str(notice.id)), c.contacts < 1 + int(notice.remind_max),
                       or_(c.last_contact_at.is_(None), c.last_contact_at <= cutoff))
        async with ctx.store.read() as tx:
            found = [str(r[0]) for r in (await tx.conn.execute(select(c.id).where(
                due_now))).all()]
        ids = []
        for rid in found:  # claim first: with several hub processes, one reminder per person
            async with ctx.store.begin() as tx:
                claimed = await tx.conn.execute(update(notice_recipients).where(
                    c.id == rid, due_now).values(last_contact_at=now))
            if claimed.rowcount == 1:
                ids.append(rid)
        if ids:
            total += await recontact(ctx, str(notice.id), "system", None, ids, "reminder")
    return total


async def resume_stale(ctx: Notices) -> int:
    """Finish sending jobs whose process died: a notice still ``sending`` whose heartbeat
    (``updated_at``, touched after every batch) is older than ``STALE_SENDING``. The job is
    taken over by a conditional update of that heartbeat, so of several hub processes only one
    resumes it, and never one whose job is still running. Returns how many were resumed."""
    now = ctx.clock()
    async with ctx.store.read() as tx:
        stale = (await tx.conn.execute(select(notices.c.id, notices.c.updated_at).where(
            notices.c.status == "sending",
            notices.c.updated_at < now - STALE_SENDING))).all()
    resumed = 0
    for notice_id, seen in stale:
        async with ctx.store.begin() as tx:
            taken = await tx.conn.execute(update(notices).where(
                notices.c.id == notice_id, notices.c.status == "sending",
                notices.c.updated_at == seen).values(updated_at=now))
        if taken.rowcount == 1:
            _LOGGER.info("notice %s: resuming a sending job left by another process", notice_id)
            await run_sending(ctx, str(notice_id))
            resumed += 1
    return resumed


async def reminder_loop(ctx: Notices, every_s: float = REMINDER_EVERY_S) -> None:
    """The background task: sending jobs a crashed process left, then reminders."""
    while True:
        try:
            await resume_stale(ctx)
            await remind_due(ctx)
        except Exception:  # a failed pass must not end the task; the next one tries again
            _LOGGER.exception("notice reminders: a pass failed")
        await asyncio.sleep(every_s)
