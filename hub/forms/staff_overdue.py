"""Reminders to a form's staff about submissions that wait too long (issue 17 F4: "notify staff
of overdue ones"; no aiohttp here, ``hub.forms.jobs`` runs it hourly).

A submission is overdue when it is still ``received`` or ``in_review`` ``OVERDUE_DAYS`` after it
was (re)submitted. Each form's ``notify_staff`` addresses get one mail per round listing the
reference numbers (not personal data on their own; never answers) and the link to the list.
``reminded_at`` makes it once per (re)submission: a resubmitted one can be overdue again.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import timedelta
from typing import Any

from sqlalchemy import or_, select, update

from hub.forms.context import Forms
from hub.forms.records import open_list
from hub.forms.tables import form_submissions, forms
from hub.notify.senders import Notice

OVERDUE_DAYS = 7
BATCH = 500


async def remind(ctx: Forms, days: int = OVERDUE_DAYS) -> dict[str, int]:
    """Mail each form's staff about its newly overdue submissions; the counts per form."""
    now = ctx.clock()
    s = form_submissions.c
    async with ctx.store.read() as tx:
        due = (await tx.conn.execute(
            select(s.id, s.form_id, s.reference)
            .where(s.status.in_(("received", "in_review")),
                   s.submitted_at <= now - timedelta(days=days),
                   or_(s.reminded_at.is_(None), s.reminded_at < s.submitted_at))
            .order_by(s.submitted_at).limit(BATCH))).all()
    by_form: dict[str, list[Any]] = defaultdict(list)
    for r in due:
        by_form[str(r.form_id)].append(r)
    counts: dict[str, int] = {}
    for form_id, rows in sorted(by_form.items()):
        async with ctx.store.begin() as tx:
            form = (await tx.conn.execute(select(forms.c.title, forms.c.notify_staff).where(
                forms.c.id == form_id))).first()
            await tx.conn.execute(update(form_submissions).where(
                s.id.in_([str(r.id) for r in rows])).values(reminded_at=now))
        counts[form_id] = len(rows)
        if form is None:
            continue
        to = open_list(ctx, form_id, "notify_staff", form.notify_staff)
        if not to:
            continue
        refs = "\n".join(f"- {r.reference}" for r in rows)
        link = f"{ctx.hub.public_url.rstrip('/')}/admin/forms/{form_id}/submissions"
        await ctx.mailer.send_batch([Notice(
            f"form-{form_id}-overdue", str(a), "ja",
            f"【未処理】{form.title} の申請 {len(rows)} 件が {days} 日以上待っています / "
            f"{len(rows)} waiting",
            f"フォーム「{form.title}」の次の申請が、受付から {days} 日以上処理されていません。"
            f"\n{refs}\n\nThese submissions have waited {days} days or more.\n\n{link}\n")
            for a in to])
    return counts
