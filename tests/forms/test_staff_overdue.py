"""Overdue reminders: a submission still waiting 7 days after it was (re)submitted is listed to
the form's staff once, by reference (never answers); one in review counts, completed or returned
ones do not; a resubmission starts the clock again."""

from __future__ import annotations

from collections import deque
from pathlib import Path

from forms_staff_support import Clock, add_form, add_submission, make_ctx
from sqlalchemy import update
from store_support import hub_store

from hub.forms import staff_overdue
from hub.forms.tables import form_submissions
from hub.notify.senders import SinkMessage


async def test_overdue_reminded_once(tmp_path: Path) -> None:
    async with hub_store("sqlite", tmp_path) as db:
        box: deque[SinkMessage] = deque()
        clock = Clock()
        ctx = make_ctx(db.store, tmp_path, box, clock)
        form_id = await add_form(ctx, notify=["kakari@ward.example", "kacho@ward.example"])
        _a, ref_a = await add_submission(ctx, form_id)
        _b, ref_b = await add_submission(ctx, form_id, status="in_review")
        _c, ref_c = await add_submission(ctx, form_id, status="completed")
        clock.move(days=6, hours=23)
        assert await staff_overdue.remind(ctx) == {}
        clock.move(hours=2)
        assert await staff_overdue.remind(ctx) == {form_id: 2}
        assert [m.to for m in box] == ["kakari@ward.example", "kacho@ward.example"]
        body = box[0].body
        assert ref_a in body
        assert ref_b in body
        assert ref_c not in body
        assert "山田" not in body
        assert await staff_overdue.remind(ctx) == {}  # once
        clock.move(hours=5)
        async with db.store.begin() as tx:  # the resident sends it again
            await tx.conn.execute(update(form_submissions).where(
                form_submissions.c.reference == ref_a).values(submitted_at=clock()))
        clock.move(days=8)
        assert await staff_overdue.remind(ctx) == {form_id: 1}
        assert ref_a in box[-1].body
        assert ref_b not in box[-1].body
