"""Finding submissions for the staff's list (no aiohttp here).

Status, dates and the reference number are plain columns, filtered in SQL. Text in the answers
cannot be searched in SQL: answers are sealed (AES-GCM per row), so the database holds nothing
to match. The search therefore opens the answers in memory, one page of rows at a time (newest
first), keeps the matches and forgets the rest; it stops after ``SCAN_MAX`` rows and says so,
so one search never opens a whole year of applications.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from sqlalchemy import func, select

from hub.forms import jp, staff_views
from hub.forms.context import Forms
from hub.forms.records import open_json
from hub.forms.service import SUBMISSION_STATUSES
from hub.forms.tables import form_history, form_submissions

PER_PAGE = 50
SCAN_PAGE = 200
SCAN_MAX = 5000
JST = ZoneInfo("Asia/Tokyo")
# the list's statuses: a submission whose fee is not paid yet is listed too, under its own
STATUSES = (*SUBMISSION_STATUSES, "awaiting_payment")


@dataclass(frozen=True)
class Filters:
    status: str = ""
    since: date | None = None
    until: date | None = None
    q: str = ""
    page: int = 1

    @classmethod
    def parse(cls, query: Any) -> Filters:
        status = str(query.get("status", ""))

        def day(name: str) -> date | None:
            try:
                return date.fromisoformat(str(query.get(name, "")))
            except ValueError:
                return None

        try:
            page = max(1, min(10_000, int(str(query.get("page", "1")))))
        except ValueError:
            page = 1
        return cls(status if status in STATUSES else "", day("since"), day("until"),
                   str(query.get("q", "")).strip()[:200], page)


@dataclass
class Found:
    rows: list[dict[str, Any]] = field(default_factory=list)
    more: bool = False
    scanned_all: bool = True


def _start(day: date) -> datetime:
    return datetime.combine(day, time(), JST).astimezone(UTC)


def _base(form_id: str, f: Filters) -> Any:
    q = select(form_submissions).where(form_submissions.c.form_id == form_id)
    if f.status:
        q = q.where(form_submissions.c.status == f.status)
    if f.since is not None:
        q = q.where(form_submissions.c.submitted_at >= _start(f.since))
    if f.until is not None:
        q = q.where(form_submissions.c.submitted_at < _start(f.until + timedelta(days=1)))
    return q.order_by(form_submissions.c.submitted_at.desc(), form_submissions.c.id.desc())


def _looks_like_reference(text: str) -> bool:
    """``F-2026-…``: searched in SQL. Anything else (a name, a phone number) is searched in the
    answers, and in the references too."""
    return jp.nfkc(text).upper().startswith("F-")


async def _last_changes(ctx: Forms, sids: list[str]) -> dict[str, Any]:
    if not sids:
        return {}
    async with ctx.store.read() as tx:
        rows = (await tx.conn.execute(
            select(form_history.c.submission_id, func.max(form_history.c.at))
            .where(form_history.c.submission_id.in_(sids))
            .group_by(form_history.c.submission_id))).all()
    return {str(r[0]): r[1] for r in rows}


def _summary(r: Any) -> dict[str, Any]:
    return {"id": str(r.id), "reference": str(r.reference), "status": str(r.status),
            "channel": str(r.channel), "submitted_at": r.submitted_at.astimezone(JST),
            "version": int(r.version)}


async def find(ctx: Forms, form_id: str, f: Filters) -> Found:
    """One page of the list. No answers in the result: the list is not personal data."""
    found = Found()
    base = _base(form_id, f)
    if f.q and _looks_like_reference(f.q):
        base = base.where(form_submissions.c.reference.like(
            jp.nfkc(f.q).upper().replace("%", "").replace("_", "") + "%"))
    if not f.q or _looks_like_reference(f.q):
        async with ctx.store.read() as tx:
            rows = (await tx.conn.execute(base.offset((f.page - 1) * PER_PAGE)
                                          .limit(PER_PAGE + 1))).all()
        found.rows = [_summary(r) for r in rows[:PER_PAGE]]
        found.more = len(rows) > PER_PAGE
    else:
        needle = jp.nfkc(f.q).casefold()
        skip, scanned = (f.page - 1) * PER_PAGE, 0
        while scanned < SCAN_MAX and not found.more:
            async with ctx.store.read() as tx:
                rows = (await tx.conn.execute(base.offset(scanned).limit(SCAN_PAGE))).all()
            if not rows:
                break
            scanned += len(rows)
            for r in rows:
                answers = open_json(ctx, str(r.id), "answers", r.answers) or {}
                if (needle not in staff_views.haystack(answers)
                        and needle not in str(r.reference).casefold()):
                    continue
                if skip:
                    skip -= 1
                elif len(found.rows) < PER_PAGE:
                    found.rows.append(_summary(r))
                else:
                    found.more = True
                    break
            del rows  # the opened answers go out of scope page by page
        found.scanned_all = scanned < SCAN_MAX
    changes = await _last_changes(ctx, [r["id"] for r in found.rows])
    for item in found.rows:
        at = changes.get(item["id"])
        item["last_change"] = at.astimezone(JST) if at is not None else None
    return found


async def one(ctx: Forms, form_id: str, sid: str) -> Any:
    async with ctx.store.read() as tx:
        return (await tx.conn.execute(select(form_submissions).where(
            form_submissions.c.id == sid, form_submissions.c.form_id == form_id))).first()
