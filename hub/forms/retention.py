"""Retention (F5): submissions past ``purge_after`` are deleted completely, and the form's staff
are warned 30 days before (no aiohttp here; ``hub.forms.jobs`` runs it).

"Completely" means every row that holds or points to the submission: ``forms_submissions``,
its ``forms_history`` (sealed comments), its ``forms_files`` rows and their sealed blobs, and
its webhook deliveries (their bodies carry answers, whatever their status). Rows go in one
transaction with the ``form_purged`` audit row (a count per form, never a reference or an
answer); the blobs are removed right after the commit, so a failed transaction never leaves
rows pointing at missing files (a crash between the two leaves sealed, unreferenced blobs that
the next run cannot find by row; they are unreadable without the keys).

Residents' unfinished drafts past ``expires_at`` go the same way with their files, and so do
submissions whose fee was never paid (``awaiting_payment``) ``MADOGUCHI_FORMS_DRAFT_DAYS`` after
they were sent, with their payment attempts: an application that was never completed is kept no
longer than an unfinished draft.

The warning is one mail per form to its ``notify_staff`` addresses with the count and the date,
never answers; each warned submission gets ``warned_at``, so it is warned once.
"""

from __future__ import annotations

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from sqlalchemy import and_, delete, or_, select, update

from hub.auth.service import audit_in
from hub.forms.context import Forms
from hub.forms.records import open_list
from hub.forms.tables import (
    form_deliveries,
    form_drafts,
    form_files,
    form_history,
    form_payments,
    form_submissions,
    forms,
)
from hub.notify.senders import Notice

_LOGGER = logging.getLogger(__name__)
WARN_DAYS = 30
BATCH = 500


@dataclass(frozen=True)
class Purged:
    submissions: dict[str, int]  # per form
    drafts: int
    blobs: int


async def purge(ctx: Forms) -> Purged:
    """Delete what is due at ``ctx.clock()``; returns the counts (nothing of the content)."""
    now = ctx.clock()
    per_form: dict[str, int] = defaultdict(int)
    blobs: list[str] = []
    unpaid_before = now - timedelta(days=ctx.settings.draft_days)
    s = form_submissions.c
    async with ctx.store.begin() as tx:
        due = (await tx.conn.execute(select(s.id, s.form_id).where(or_(
            s.purge_after <= now,
            and_(s.status == "awaiting_payment", s.created_at <= unpaid_before)))
                                     .limit(BATCH))).all()
        ids = [str(r.id) for r in due]
        drafts = [str(r[0]) for r in (await tx.conn.execute(
            select(form_drafts.c.id).where(form_drafts.c.expires_at <= now).limit(BATCH))).all()]
        if ids or drafts:
            blobs = [str(r[0]) for r in (await tx.conn.execute(select(form_files.c.id).where(
                or_(form_files.c.submission_id.in_(ids), form_files.c.draft_id.in_(drafts)))
            )).all()]
            await tx.conn.execute(delete(form_files).where(form_files.c.id.in_(blobs)))
            await tx.conn.execute(delete(form_deliveries).where(
                form_deliveries.c.submission_id.in_(ids)))
            await tx.conn.execute(delete(form_history).where(
                form_history.c.submission_id.in_(ids)))
            await tx.conn.execute(delete(form_payments).where(
                form_payments.c.submission_id.in_(ids)))
            await tx.conn.execute(delete(form_submissions).where(form_submissions.c.id.in_(ids)))
            await tx.conn.execute(delete(form_drafts).where(form_drafts.c.id.in_(drafts)))
        for r in due:
            per_form[str(r.form_id)] += 1
        for form_id, n in sorted(per_form.items()):
            await audit_in(tx, ctx.hub, actor="system", action="form_purged", target=form_id,
                           detail={"submissions": n})
        if drafts and not per_form:
            await audit_in(tx, ctx.hub, actor="system", action="form_purged", target=None,
                           detail={"drafts": len(drafts)})
    removed = 0
    for blob in blobs:
        removed += int(await ctx.intake.delete(blob))
    if ids or drafts:
        _LOGGER.info("forms retention: %d submissions, %d drafts, %d files deleted",
                     len(ids), len(drafts), removed)
    return Purged(dict(per_form), len(drafts), removed)


async def warn(ctx: Forms) -> dict[str, int]:
    """Mail each form's staff about submissions to be deleted within ``WARN_DAYS`` that were
    not warned of yet; returns the counts per form."""
    now = ctx.clock()
    horizon = now + timedelta(days=WARN_DAYS)
    async with ctx.store.read() as tx:
        due = (await tx.conn.execute(
            select(form_submissions.c.id, form_submissions.c.form_id,
                   form_submissions.c.purge_after)
            .where(form_submissions.c.purge_after <= horizon,
                   form_submissions.c.purge_after > now,
                   form_submissions.c.warned_at.is_(None)).limit(BATCH))).all()
    by_form: dict[str, list[Any]] = defaultdict(list)
    for r in due:
        by_form[str(r.form_id)].append(r)
    counts: dict[str, int] = {}
    for form_id, rows in sorted(by_form.items()):
        first = min(r.purge_after for r in rows)
        async with ctx.store.begin() as tx:
            form = (await tx.conn.execute(select(forms.c.title, forms.c.notify_staff).where(
                forms.c.id == form_id))).first()
            await tx.conn.execute(update(form_submissions).where(
                form_submissions.c.id.in_([str(r.id) for r in rows])).values(warned_at=now))
            await audit_in(tx, ctx.hub, actor="system", action="form_retention_warned",
                           target=form_id, detail={"submissions": len(rows)})
        counts[form_id] = len(rows)
        if form is None or not form.notify_staff:
            continue
        to = open_list(ctx, form_id, "notify_staff", form.notify_staff)
        day = first.date().isoformat()
        link = f"{ctx.hub.public_url.rstrip('/')}/admin/forms/{form_id}/submissions"
        mails = [Notice(f"form-{form_id}-retention", str(a), "ja",
                        f"【保存期間】{form.title} の申請 {len(rows)} 件が削除されます / "
                        f"{len(rows)} submissions will be deleted",
                        f"フォーム「{form.title}」の申請 {len(rows)} 件が、保存期間の満了により "
                        f"{day} 以降に自動で削除されます。必要なものは、それまでに書き出して"
                        f"ください。\n\n{len(rows)} submissions of this form reach the end of "
                        f"their retention period and will be deleted from {day}. Export what "
                        f"you must keep before then.\n\n{link}\n") for a in to]
        if mails:
            await ctx.mailer.send_batch(mails)
    return counts
