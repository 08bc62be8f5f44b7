"""Notices themselves: their settings, who may see them, their status (no aiohttp here).

A notice moves ``draft → ready → sending → sent → closed``:

- **draft**: settings, the recipient list and the PDFs may change; nothing has left the hub.
- **ready**: every recipient has what it needs (its PDF matched and signed, or the common PDF
  signed, or no PDF); the settings are frozen. Back to draft with ``reopen``.
- **sending**: the mails are going out (``hub.notices.sending``); **sent**: every recipient was
  tried once; re-contacts and reminders go on. **closed**: no more mails; the portal still
  serves the notice until its retention ends (``hub.notices.retention``).

Department scope: a notice belongs to one department; ``notice_staff`` granted at that
department (or ``*``) and administrators see it. Every staff action is audited in the same
transaction as the change.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, select, update

from hub.auth import access
from hub.auth.service import audit_in
from hub.notices.context import Notices
from hub.notices.records import new_id, seal_field
from hub.notices.tables import notice_files, notice_recipients, notices

STATUSES = ("draft", "ready", "sending", "sent", "closed")
AUTHS = ("code", "link")
ALL = "*"
MAX_RETENTION_DAYS = 1827  # five years (F5's limit, used here too)
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
_DEPT = re.compile(r"^[a-z0-9_-]{1,64}$")


class NoticeError(Exception):
    """A refusal staff can read: a stable ``code`` with Japanese and English texts."""

    def __init__(self, code: str, ja: str, en: str, field: str | None = None) -> None:
        super().__init__(en)
        self.code, self.ja, self.en, self.field = code, ja, en, field

    def text(self, lang: str) -> str:
        return self.ja if lang == "ja" else self.en


class FieldErrors(Exception):
    """Every bad field of a settings form at once (nothing is saved)."""

    def __init__(self, errors: list[NoticeError]) -> None:
        super().__init__(", ".join(e.code for e in errors))
        self.errors = errors


@dataclass(frozen=True)
class NoticeFields:
    department: str
    title: str
    description: str
    message_ja: str
    message_en: str
    auth: str
    remind_after_days: int | None
    remind_max: int
    retention_days: int
    test_mode: bool
    test_addresses: tuple[str, ...]


def departments_of(grants: tuple[tuple[str, str], ...]) -> set[str] | None:
    """The departments a session may work for; None: all (an administrator, or ``*``)."""
    return access.departments_of(grants, "notice_staff")


def may_see(grants: tuple[tuple[str, str], ...], department: str) -> bool:
    allowed = departments_of(grants)
    return allowed is None or department in allowed


def _int(form: Mapping[str, str], name: str, lo: int, hi: int, default: int | None,
         errors: list[NoticeError], ja: str, en: str) -> int | None:
    raw = (form.get(name) or "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = lo - 1
    if not lo <= value <= hi:
        errors.append(NoticeError("bad_number", f"{ja}は{lo}から{hi}の整数で入力してください",
                                  f"{en}: a whole number from {lo} to {hi}", name))
        return default
    return value


def read_fields(form: Mapping[str, str]) -> NoticeFields:
    """The settings form → fields, or ``FieldErrors`` naming every bad field."""
    errors: list[NoticeError] = []
    dept = (form.get("department") or "").strip().lower()
    if not _DEPT.match(dept):
        errors.append(NoticeError("bad_department",
                                  "所属課のコードは英小文字・数字・-_ の64文字以内です",
                                  "Department code: lower-case letters, digits, - and _ (up to 64)",
                                  "department"))
    title = (form.get("title") or "").strip()
    if not 1 <= len(title) <= 120:
        errors.append(NoticeError("bad_title", "件名を120文字以内で入力してください",
                                  "Enter a title of up to 120 characters", "title"))
    description = (form.get("description") or "").strip()
    message_ja = (form.get("message_ja") or "").strip()
    message_en = (form.get("message_en") or "").strip()
    if not message_ja:
        errors.append(NoticeError("no_message",
                                  "住民に表示するメッセージ（日本語）を入力してください",
                                  "Enter the message residents see (Japanese)", "message_ja"))
    for name, text in (("description", description), ("message_ja", message_ja),
                       ("message_en", message_en)):
        if len(text) > 20000:
            errors.append(NoticeError("too_long", "20,000文字以内で入力してください",
                                      "Up to 20,000 characters", name))
    auth = form.get("auth") or "code"
    if auth not in AUTHS:
        errors.append(NoticeError("bad_auth", "認証方法を選んでください",
                                  "Choose how residents sign in", "auth"))
    remind = _int(form, "remind_after_days", 1, 90, None, errors, "再連絡までの日数",
                  "Days before a reminder")
    remind_max = _int(form, "remind_max", 0, 10, 1, errors, "再連絡の回数", "Number of reminders")
    retention = _int(form, "retention_days", 1, MAX_RETENTION_DAYS, 365, errors,
                     "保存期間（日）", "Retention (days)")
    test_mode = (form.get("test_mode") or "") in ("1", "on", "true")
    tests = tuple(a.strip() for a in re.split(r"[,\s]+", form.get("test_addresses") or "")
                  if a.strip())
    if any(not _EMAIL.match(a) for a in tests):
        errors.append(NoticeError("bad_test_address",
                                  "テスト送信先のメールアドレスの形式が正しくありません",
                                  "A test address is not a valid e-mail address",
                                  "test_addresses"))
    if errors:
        raise FieldErrors(errors)
    assert remind_max is not None
    assert retention is not None
    return NoticeFields(dept, title, description, message_ja, message_en, auth, remind,
                        remind_max, retention, test_mode, tests)


def _values(ctx: Notices, notice_id: str, f: NoticeFields) -> dict[str, Any]:
    v = asdict(f)
    v["test_addresses"] = seal_field(ctx, notice_id, "test_addresses",
                                     json.dumps(list(f.test_addresses)))
    return v


async def create(ctx: Notices, fields: NoticeFields, actor: str, ip: str | None) -> str:
    notice_id, now = new_id(), ctx.clock()
    async with ctx.store.begin() as tx:
        await tx.conn.execute(notices.insert().values(
            id=notice_id, contact="email", status="draft", pdf_mode="none", split="",
            signatures=0, created_at=now, created_by=actor, updated_at=now, figures="{}",
            **_values(ctx, notice_id, fields)))
        await audit_in(tx, ctx.hub, actor=actor, action="notice_created", target=notice_id,
                       ip=ip, detail={"department": fields.department,
                                      "test_mode": fields.test_mode})
    return notice_id


async def get(ctx: Notices, notice_id: str) -> Any:
    async with ctx.store.read() as tx:
        return (await tx.conn.execute(select(notices).where(notices.c.id == notice_id))).first()


async def require(ctx: Notices, notice_id: str, grants: tuple[tuple[str, str], ...]) -> Any:
    """The notice, if it exists and the session's departments include it; else ``not_found``
    (the same answer for "not yours", so ids of other departments cannot be probed)."""
    row = await get(ctx, notice_id)
    if row is None or not may_see(grants, str(row.department)):
        raise NoticeError("not_found", "通知が見つかりません", "No such notice")
    return row


async def update_fields(ctx: Notices, notice_id: str, fields: NoticeFields, actor: str,
                        ip: str | None) -> None:
    async with ctx.store.begin() as tx:
        done = await tx.conn.execute(update(notices).where(
            notices.c.id == notice_id, notices.c.status == "draft").values(
            updated_at=ctx.clock(), **_values(ctx, notice_id, fields)))
        if done.rowcount != 1:
            raise NoticeError("not_draft", "下書きの通知だけを変更できます",
                              "Only a draft notice can be changed")
        await audit_in(tx, ctx.hub, actor=actor, action="notice_changed", target=notice_id,
                       ip=ip, detail={"what": "settings"})


async def set_status(ctx: Notices, notice_id: str, old: tuple[str, ...], new: str, actor: str,
                     ip: str | None, **values: Any) -> None:
    """Move a notice from one of ``old`` to ``new`` in one conditional UPDATE (two staff
    pressing "send" at once: one wins, the other is told)."""
    now = ctx.clock()
    async with ctx.store.begin() as tx:
        done = await tx.conn.execute(update(notices).where(
            notices.c.id == notice_id, notices.c.status.in_(old)).values(
            status=new, updated_at=now, **values))
        if done.rowcount != 1:
            raise NoticeError("wrong_status",
                              "この操作は今の状態ではできません（画面を更新してください）",
                              "Not possible in the notice's current status (reload the page)")
        action = {"closed": "notice_closed", "sending": "notice_sent"}.get(new, "notice_changed")
        await audit_in(tx, ctx.hub, actor=actor, action=action, target=notice_id, ip=ip,
                       detail={"status": new})


@dataclass(frozen=True)
class Figures:
    """Per-notice figures (N6, N7): counts only, safe to show and to keep after the purge."""

    recipients: int = 0
    pending: int = 0
    sent: int = 0
    bounced: int = 0
    failed: int = 0
    opened: int = 0
    unopened: int = 0
    contacts: int = 0
    downloads: int = 0
    attachments: int = 0
    signatures: int = 0
    matched: int = 0


async def figures(ctx: Notices, notice_id: str) -> Figures:
    async with ctx.store.read() as tx:
        row = (await tx.conn.execute(select(notices.c.figures, notices.c.purged_at,
                                            notices.c.signatures)
                                     .where(notices.c.id == notice_id))).first()
        if row is None:
            return Figures()
        if row.purged_at is not None:
            return Figures(**json.loads(row.figures))
        r = notice_recipients.c
        counts: dict[str, int] = dict((await tx.conn.execute(select(r.status, func.count()).where(
            r.notice_id == notice_id).group_by(r.status))).all())
        agg = (await tx.conn.execute(select(
            func.count(), func.count(r.opened_at), func.coalesce(func.sum(r.contacts), 0),
            func.coalesce(func.sum(r.downloads), 0), func.count(r.file_id)).where(
            r.notice_id == notice_id))).one()
        files = (await tx.conn.execute(select(func.count()).select_from(notice_files).where(
            notice_files.c.notice_id == notice_id, notice_files.c.kind != "source"))).scalar()
    total, opened = int(agg[0]), int(agg[1])
    delivered = int(counts.get("sent", 0))
    return Figures(recipients=total, pending=int(counts.get("pending", 0)), sent=delivered,
                   bounced=int(counts.get("bounced", 0)), failed=int(counts.get("failed", 0)),
                   opened=opened, unopened=delivered - opened, contacts=int(agg[2]),
                   downloads=int(agg[3]), attachments=int(files or 0),
                   signatures=int(row.signatures), matched=int(agg[4]))


async def listing(ctx: Notices, departments: set[str] | None) -> list[dict[str, Any]]:
    """The notices a session may see, newest first, each with its figures."""
    q = select(notices).order_by(notices.c.created_at.desc())
    if departments is not None:
        q = q.where(notices.c.department.in_(sorted(departments)))
    async with ctx.store.read() as tx:
        rows = (await tx.conn.execute(q)).all()
    return [{"row": row, "figures": await figures(ctx, str(row.id))} for row in rows]


def touch(now: datetime) -> dict[str, Any]:
    """The ``updated_at`` bump every change carries: the staff live view polls it."""
    return {"updated_at": now}
