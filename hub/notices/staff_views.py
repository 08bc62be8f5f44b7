"""What the staff pages show of a notice: the recipient table (names opened for the page,
e-mails partly masked), the live stream (SSE; no names, no e-mails: the page already has them
and rows are matched by id), the per-notice CSV, the streamed upload reader, and the
background jobs (signing, sending) the pages start and follow. ``routes`` stays thin.

Why a job wrapper here: ``sign_all`` and ``send_all`` run for minutes, longer than a request;
the page starts them as tasks and shows their progress from ``ctx.jobs[notice_id]``. A failure
must reach the staff as a readable message on the page, never vanish in a task nobody awaits.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import logging
import time
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import asdict
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select

from hub.kit import uploads
from hub.notices import service
from hub.notices.context import Notices
from hub.notices.records import person
from hub.notices.service import NoticeError
from hub.notices.tables import notice_recipients, notices

_LOGGER = logging.getLogger(__name__)

TOKYO = ZoneInfo("Asia/Tokyo")
FILTERS = ("all", "opened", "unopened", "bounced")
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")
_TASKS: set[asyncio.Task[None]] = set()  # running jobs, kept referenced until they end
POLL_S = 0.5
HEARTBEAT_S = 15.0
STREAM_MAX_S = 3600.0  # then the browser reconnects (and the session is checked again)
SESSION_CHECK_S = 60.0


def when(value: datetime | None) -> str:
    """A stored UTC moment as staff read it: Tokyo time to the minute, or ""."""
    return value.astimezone(TOKYO).strftime("%Y-%m-%d %H:%M") if value is not None else ""


def mask_email(address: str) -> str:
    """``taro@example.jp`` → ``t***@example.jp``: enough to recognise, not to copy."""
    local, at, domain = address.partition("@")
    if not at:
        return "***"
    return f"{local[:1]}***@{domain}"


def _live_row(row: Any) -> dict[str, Any]:
    return {"id": str(row.id), "status": str(row.status), "smtp_code": row.smtp_code,
            "sent_at": when(row.sent_at), "opened_at": when(row.opened_at),
            "contacts": int(row.contacts), "downloads": int(row.downloads)}


def _filtered(q: Any, which: str) -> Any:
    c = notice_recipients.c
    if which == "opened":
        return q.where(c.opened_at.is_not(None))
    if which == "unopened":
        return q.where(c.opened_at.is_(None), c.status == "sent")
    if which == "bounced":
        return q.where(c.status == "bounced")
    return q


async def _rows(ctx: Notices, notice_id: str, which: str = "all") -> list[Any]:
    q = select(notice_recipients).where(notice_recipients.c.notice_id == notice_id) \
        .order_by(notice_recipients.c.line)
    async with ctx.store.read() as tx:
        return list((await tx.conn.execute(_filtered(q, which))).all())


async def table_rows(ctx: Notices, notice_id: str, which: str = "all") -> list[dict[str, Any]]:
    """The recipient table of the notice page (personal data: the caller audits the view)."""
    out = []
    for row in await _rows(ctx, notice_id, which):
        p = person(ctx, row)
        out.append({**_live_row(row), "line": int(row.line), "name": p.name,
                    "email": mask_email(p.email), "key": p.key,
                    "recontact": row.opened_at is None and row.status in ("sent", "failed")})
    return out


def job_of(ctx: Notices, notice_id: str) -> dict[str, Any] | None:
    """The notice's job progress, as JSON-safe values (None: no job in this process)."""
    job = ctx.jobs.get(notice_id)
    if not job:
        return None
    return {"stage": str(job.get("stage", "")), "done": int(job.get("done") or 0),
            "total": int(job.get("total") or 0), "running": bool(job.get("running")),
            "error": job.get("error")}


async def updated_at(ctx: Notices, notice_id: str) -> tuple[str, str] | None:
    """What the live stream polls: the notice's ``updated_at`` and status (None: gone)."""
    async with ctx.store.read() as tx:
        row = (await tx.conn.execute(select(notices.c.updated_at, notices.c.status).where(
            notices.c.id == notice_id))).first()
    return None if row is None else (row.updated_at.isoformat(), str(row.status))


async def snapshot(ctx: Notices, notice_id: str, status: str) -> dict[str, Any]:
    """One ``status`` event: figures, the job, and every row's state by id (no names)."""
    figures = asdict(await service.figures(ctx, notice_id))
    return {"status": status, "figures": figures, "job": job_of(ctx, notice_id),
            "rows": [_live_row(r) for r in await _rows(ctx, notice_id)]}


def start_job(ctx: Notices, notice_id: str, stage: str,
              work: Callable[[], Awaitable[Any]]) -> None:
    """Run ``work`` as a background task, its progress and outcome in ``ctx.jobs``. Refuses a
    second job on the same notice while one runs (in this process)."""
    job = ctx.jobs.setdefault(notice_id, {})
    if job.get("running"):
        raise NoticeError("job_running", "この通知では処理を実行中です。終わるまでお待ちください",
                          "A job is already running for this notice; wait until it ends")
    job.clear()
    job.update(stage=stage, done=0, total=0, running=True, error=None)

    async def run() -> None:
        try:
            await work()
        except NoticeError as exc:
            job.update(error={"code": exc.code, "ja": exc.ja, "en": exc.en})
        except Exception:  # the staff see a message; the cause is in the log
            _LOGGER.exception("notice job %s failed", stage)
            job.update(error={"code": "job_failed",
                              "ja": "処理が途中で止まりました。もう一度実行するか、"
                                    "システム管理者に連絡してください",
                              "en": "The job stopped; run it again or ask the system "
                                    "administrator"})
        finally:
            job["running"] = False

    task = asyncio.get_running_loop().create_task(run(), name=f"notice-{stage}")
    _TASKS.add(task)
    task.add_done_callback(_TASKS.discard)


async def read_upload(request: web.Request, limit: int,
                      names: tuple[str, ...]) -> tuple[bytes, dict[str, str]]:
    """The streamed form's file (``hub.kit.uploads``) and its text fields in ``names``;
    NoticeError when it is not such a form, holds no file or is too large."""
    bad = NoticeError("bad_upload", "ファイルを選んで送信してください", "Choose a file and send it")
    try:
        data, fields = await uploads.read_upload(request, limit, names)
    except uploads.UploadError as exc:
        if exc.code == "too_large":
            raise NoticeError("too_large", f"ファイルが大きすぎます（{limit // 2**20}MBまで）",
                              f"The file is too large (up to {limit // 2**20} MB)") from None
        raise bad from None
    if not data:
        raise bad
    return data, fields


async def stream(request: web.Request, ctx: Notices, notice_id: str,
                 signed_in: Callable[[], Awaitable[bool]]) -> web.StreamResponse:
    """Poll the notice's ``updated_at`` and its job every 0.5 s; on a change send one
    ``event: status`` (the first with every row, then only the rows that changed); a comment
    every 15 s; stop when the client leaves, the session ends or after an hour."""
    resp = web.StreamResponse(headers={
        "Content-Type": "text/event-stream; charset=utf-8", "Cache-Control": "no-cache, no-store",
        "X-Accel-Buffering": "no"})
    await resp.prepare(request)
    started = beat = checked = time.monotonic()
    last: tuple[Any, ...] | None = None
    seen: dict[str, dict[str, Any]] = {}
    try:
        await resp.write(b"retry: 2000\n\n")
        while time.monotonic() - started < STREAM_MAX_S:
            if request.transport is None or request.transport.is_closing():
                break
            now = time.monotonic()
            if now - checked > SESSION_CHECK_S:
                checked = now
                if not await signed_in():
                    break
            stamp = await updated_at(ctx, notice_id)
            if stamp is None:
                break
            key = (stamp, json.dumps(job_of(ctx, notice_id), sort_keys=True))
            if key != last:
                last = key
                snap = await snapshot(ctx, notice_id, stamp[1])
                rows = snap["rows"]
                snap["rows"] = [r for r in rows if seen.get(r["id"]) != r]
                seen = {r["id"]: r for r in rows}
                await resp.write(b"event: status\ndata: " + json.dumps(
                    snap, ensure_ascii=False, separators=(",", ":")).encode() + b"\n\n")
                beat = now
            elif now - beat >= HEARTBEAT_S:
                await resp.write(b": hb\n\n")
                beat = now
            await asyncio.sleep(POLL_S)
    except ConnectionError:
        pass
    return resp


def cell(value: object) -> str:
    """A CSV cell that a spreadsheet will not run: text starting like a formula gets ``'``."""
    text = "" if value is None else str(value)
    return "'" + text if isinstance(value, str) and text.startswith(FORMULA_START) else text


CSV_HEADS = {
    "ja": ("行", "氏名", "メールアドレス", "通知番号", "状態", "SMTPコード", "送信日時",
           "開封日時", "連絡回数", "ダウンロード回数"),
    "en": ("Line", "Name", "E-mail", "Key", "Status", "SMTP code", "Sent", "Opened",
           "Contacts", "Downloads"),
}


async def export_csv(ctx: Notices, notice_id: str, lang: str, encoding: str,
                     status_words: dict[str, str]) -> tuple[bytes, int]:
    """The notice's recipients as CSV (full e-mail addresses: the export is audited); returns
    the bytes and the row count. cp932 replaces what Shift_JIS cannot hold with ``?``."""
    buf = io.StringIO(newline="")
    out = csv.writer(buf, lineterminator="\r\n")
    out.writerow(CSV_HEADS["en" if lang == "en" else "ja"])
    rows = await _rows(ctx, notice_id)
    for row in rows:
        p = person(ctx, row)
        out.writerow([cell(v) for v in (
            int(row.line), p.name, p.email, p.key, status_words.get(str(row.status), row.status),
            row.smtp_code, when(row.sent_at), when(row.opened_at), int(row.contacts),
            int(row.downloads))])
    text = buf.getvalue()
    data = text.encode("cp932", errors="replace") if encoding == "cp932" \
        else text.encode("utf-8-sig")
    return data, len(rows)


def problems_of(exc: NoticeError, lang: str) -> list[dict[str, Any]]:
    """Every problem of a refusal (bad list lines, PDF pages), printed generically."""
    out = []
    for p in getattr(exc, "problems", None) or []:
        out.append({"line": getattr(p, "line", None), "code": getattr(p, "code", ""),
                    "text": getattr(p, "ja" if lang == "ja" else "en", "")})
    return out


def key_report(unmatched: Sequence[tuple[int, int, str]]) -> list[dict[str, Any]]:
    return [{"index": i + 1, "page": page, "key": key} for i, page, key in unmatched]
