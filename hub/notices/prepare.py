"""Preparing a draft: the recipient list, the PDFs (one for all, or split per resident and
matched), the bulk signature, and the check that makes it ``ready`` (N1–N4). No aiohttp here.

All or nothing at every step: a list with one bad line stores nothing; a PDF whose split has a
problem stores no part. Parsing, splitting and signing run in worker threads (CPU-bound), the
database work in one transaction per step. The uploaded source PDF itself is not kept: only its
parts (or the one common PDF) are, encrypted, until signed; signing writes each signed PDF as a
new blob and deletes the unsigned one, so only signed bytes remain to be served.
"""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import delete, select, update

from hub.auth.service import audit_in
from hub.notices import matching, pdfsplit, recipients, signing
from hub.notices.context import Notices
from hub.notices.records import email_hmac, new_id, open_field, seal_field
from hub.notices.service import NoticeError, set_status
from hub.notices.tables import notice_files, notice_recipients, notices

MAX_PDF_BYTES = 200 * 1024 * 1024
MAX_LIST_BYTES = 20 * 1024 * 1024


class PrepareProblems(NoticeError):
    """Several problems at once (bad lines of a list, a split that does not add up)."""

    def __init__(self, code: str, ja: str, en: str, problems: list[Any]) -> None:
        super().__init__(code, ja, en)
        self.problems = problems


async def _draft(ctx: Notices, notice_id: str) -> Any:
    async with ctx.store.read() as tx:
        row = (await tx.conn.execute(select(notices).where(notices.c.id == notice_id))).first()
    if row is None or row.status != "draft":
        raise NoticeError("not_draft", "下書きの通知だけを準備できます（送信前に「下書きに戻す」）",
                          "Only a draft notice can be prepared (reopen it first)")
    return row


async def import_recipients(ctx: Notices, notice_id: str, data: bytes, key_column: str | None,
                            actor: str, ip: str | None) -> int:
    """Replace the notice's recipient list with ``data`` (CSV or xlsx); returns the count."""
    await _draft(ctx, notice_id)
    if len(data) > MAX_LIST_BYTES:
        raise NoticeError("too_large", "送付先リストは20MBまでです", "The list may be up to 20 MB")
    try:
        parsed = await asyncio.to_thread(recipients.parse_recipients, data, key_column)
    except recipients.ImportProblems as exc:
        raise PrepareProblems("bad_list", "送付先リストに誤りがあります。何も取り込んでいません",
                              "The list has problems; nothing was imported",
                              exc.problems) from None
    now = ctx.clock()
    rows = []
    for r in parsed.rows:
        rid = new_id()
        rows.append({
            "id": rid, "notice_id": notice_id, "line": r.line,
            "name": seal_field(ctx, rid, "name", r.name),
            "email": seal_field(ctx, rid, "email", r.email),
            "email_hmac": email_hmac(ctx, r.email),
            "match_key": seal_field(ctx, rid, "key", r.key or ""),
            "data": seal_field(ctx, rid, "data", json.dumps(dict(r.data), ensure_ascii=False)),
            "lang": "en" if str(r.data.get("lang", r.data.get("言語", ""))).lower() == "en"
            else "ja",
            "file_id": None, "status": "pending", "downloads": 0, "contacts": 0,
            "code_tries": 0, "codes_sent": 0, "updated_at": now,
        })
    async with ctx.store.begin() as tx:
        await tx.conn.execute(delete(notice_recipients).where(
            notice_recipients.c.notice_id == notice_id))
        for i in range(0, len(rows), 500):
            await tx.conn.execute(notice_recipients.insert(), rows[i:i + 500])
        await tx.conn.execute(update(notices).where(notices.c.id == notice_id).values(
            updated_at=now))
        await audit_in(tx, ctx.hub, actor=actor, action="notice_recipients_imported",
                       target=notice_id, ip=ip,
                       detail={"count": len(rows), "columns": list(parsed.columns)})
    if (await _parts(ctx, notice_id)):
        await rematch(ctx, notice_id)
    return len(rows)


async def _parts(ctx: Notices, notice_id: str) -> list[Any]:
    async with ctx.store.read() as tx:
        return list((await tx.conn.execute(select(notice_files).where(
            notice_files.c.notice_id == notice_id, notice_files.c.kind == "part")
            .order_by(notice_files.c.part_index))).all())


@dataclass
class MatchReport:
    """What staff check before sending (N2, N4): counts and every unmatched part/recipient."""

    mode: str
    recipients: int = 0
    parts: int = 0
    matched: int = 0
    unmatched_parts: list[tuple[int, int, str]] = field(default_factory=list)  # index, page, key
    unmatched_recipients: list[tuple[int, str]] = field(default_factory=list)  # line, key
    signed: int = 0
    unsigned: int = 0


async def _remove_files(ctx: Notices, notice_id: str, kinds: tuple[str, ...]) -> None:
    async with ctx.store.begin() as tx:
        ids = [str(r[0]) for r in (await tx.conn.execute(select(notice_files.c.id).where(
            notice_files.c.notice_id == notice_id, notice_files.c.kind.in_(kinds)))).all()]
        await tx.conn.execute(update(notice_recipients).where(
            notice_recipients.c.notice_id == notice_id).values(file_id=None))
        await tx.conn.execute(delete(notice_files).where(notice_files.c.id.in_(ids)))
    for blob in ids:
        await ctx.files.delete(blob)


async def attach_pdf(ctx: Notices, notice_id: str, data: bytes, mode: str, pattern: str,
                     pages: int, actor: str, ip: str | None) -> MatchReport:
    """``mode``: ``single`` (one PDF for everyone), ``key`` (split where ``pattern`` finds a key
    on a page) or ``pages`` (every ``pages`` pages); replaces any PDF attached before."""
    await _draft(ctx, notice_id)
    if len(data) > MAX_PDF_BYTES:
        raise NoticeError("too_large", "PDFは200MBまでです", "The PDF may be up to 200 MB")
    if mode == "single":
        split = await asyncio.to_thread(pdfsplit.split_by_pages, data, 0)
    elif mode == "key":
        split = await asyncio.to_thread(pdfsplit.split_by_key, data, pattern)
    elif mode == "pages":
        split = await asyncio.to_thread(pdfsplit.split_by_pages, data, pages)
    else:
        raise NoticeError("bad_mode", "PDFの分け方を選んでください", "Choose how to split the PDF")
    if split.problems:
        raise PrepareProblems("bad_pdf", "PDFを分割できませんでした。何も保存していません",
                              "The PDF could not be split; nothing was stored", split.problems)
    await _remove_files(ctx, notice_id, ("common", "part"))
    now = ctx.clock()
    stored = []
    for part in split.parts:
        fid = new_id()
        digest = await ctx.files.put(fid, part.pdf)
        stored.append({"id": fid, "notice_id": notice_id,
                       "kind": "common" if mode == "single" else "part", "signed": False,
                       "part_index": part.index, "first_page": part.first_page,
                       "pages": part.page_count, "size": len(part.pdf), "sha256": digest,
                       "match_key": seal_field(ctx, fid, "key", part.key or ""),
                       "created_at": now})
    async with ctx.store.begin() as tx:
        if stored:
            await tx.conn.execute(notice_files.insert(), stored)
        await tx.conn.execute(update(notices).where(notices.c.id == notice_id).values(
            pdf_mode="single" if mode == "single" else "per_recipient",
            split=f"key:{pattern}" if mode == "key" else
            (f"pages:{pages}" if mode == "pages" else ""), updated_at=now))
        await audit_in(tx, ctx.hub, actor=actor, action="notice_pdfs_prepared",
                       target=notice_id, ip=ip, detail={"mode": mode, "parts": len(stored)})
    if mode != "single":
        await rematch(ctx, notice_id)
    return await report(ctx, notice_id)


async def rematch(ctx: Notices, notice_id: str) -> None:
    """Match the stored parts with the recipient rows by key (or by order without keys)."""
    parts = await _parts(ctx, notice_id)
    async with ctx.store.read() as tx:
        rows = (await tx.conn.execute(select(notice_recipients).where(
            notice_recipients.c.notice_id == notice_id).order_by(notice_recipients.c.line))).all()
    keyed_parts = [matching.Keyed(str(p.id), open_field(ctx, str(p.id), "key", p.match_key))
                   for p in parts]
    keyed_rows = [matching.Keyed(str(r.id), open_field(ctx, str(r.id), "key", r.match_key))
                  for r in rows]
    pairs = matching.pair_ids(keyed_parts, keyed_rows)
    async with ctx.store.begin() as tx:
        await tx.conn.execute(update(notice_recipients).where(
            notice_recipients.c.notice_id == notice_id).values(file_id=None))
        for part_id, row_id in pairs:
            await tx.conn.execute(update(notice_recipients).where(
                notice_recipients.c.id == row_id).values(file_id=part_id))


async def report(ctx: Notices, notice_id: str) -> MatchReport:
    async with ctx.store.read() as tx:
        notice = (await tx.conn.execute(select(notices).where(notices.c.id == notice_id))).one()
        files = (await tx.conn.execute(select(notice_files).where(
            notice_files.c.notice_id == notice_id, notice_files.c.kind != "source")
            .order_by(notice_files.c.part_index))).all()
        rows = (await tx.conn.execute(select(
            notice_recipients.c.id, notice_recipients.c.line, notice_recipients.c.match_key,
            notice_recipients.c.file_id).where(notice_recipients.c.notice_id == notice_id)
            .order_by(notice_recipients.c.line))).all()
    out = MatchReport(mode=str(notice.pdf_mode), recipients=len(rows), parts=len(files),
                      signed=sum(1 for f in files if f.signed),
                      unsigned=sum(1 for f in files if not f.signed))
    if notice.pdf_mode == "per_recipient":
        used = {str(r.file_id) for r in rows if r.file_id}
        out.matched = len(used)
        out.unmatched_parts = [(int(f.part_index or 0), int(f.first_page or 0),
                                open_field(ctx, str(f.id), "key", f.match_key))
                               for f in files if str(f.id) not in used]
        out.unmatched_recipients = [(int(r.line), open_field(ctx, str(r.id), "key", r.match_key))
                                    for r in rows if not r.file_id]
    else:
        out.matched = len(rows) if files or notice.pdf_mode == "none" else 0
    return out


async def sign_all(ctx: Notices, notice_id: str, actor: str, ip: str | None) -> int:
    """Sign every unsigned PDF of the notice (PAdES B-LT, ``hub.notices.signing``); returns how
    many were signed. Progress in ``ctx.jobs[notice_id]``. Each signed PDF replaces its unsigned
    blob in its own transaction, so an interrupted run resumes where it stopped."""
    await _draft(ctx, notice_id)
    spec = signing.parse_signer_spec(ctx.settings.signer_env)
    if spec is None:
        raise NoticeError("no_signer",
                          "署名用の鍵が設定されていません（システム管理者に連絡してください）",
                          "No signing key is configured (ask the system administrator)")
    async with ctx.store.read() as tx:
        todo = (await tx.conn.execute(select(notice_files).where(
            notice_files.c.notice_id == notice_id, notice_files.c.signed.is_(False),
            notice_files.c.kind.in_(("common", "part"))).order_by(
            notice_files.c.part_index))).all()
    progress = ctx.jobs.setdefault(notice_id, {})
    progress.update(stage="signing", done=0, total=len(todo), error=None)
    done = 0
    with await asyncio.to_thread(signing.PdfSigner, spec) as signer:
        for f in todo:
            plain = await ctx.files.get(str(f.id))
            signed = await asyncio.to_thread(signer.sign, plain)
            fid = new_id()
            digest = await ctx.files.put(fid, signed)
            row = {k: getattr(f, k) for k in ("notice_id", "kind", "part_index", "first_page",
                                                "pages", "created_at")}
            key = open_field(ctx, str(f.id), "key", f.match_key)
            async with ctx.store.begin() as tx:
                await tx.conn.execute(notice_files.insert().values(
                    id=fid, signed=True, size=len(signed), sha256=digest,
                    match_key=seal_field(ctx, fid, "key", key), **row))
                await tx.conn.execute(update(notice_recipients).where(
                    notice_recipients.c.file_id == f.id).values(file_id=fid))
                await tx.conn.execute(delete(notice_files).where(notice_files.c.id == f.id))
                await tx.conn.execute(update(notices).where(notices.c.id == notice_id).values(
                    signatures=notices.c.signatures + 1, updated_at=ctx.clock()))
            await ctx.files.delete(str(f.id))
            done += 1
            progress.update(done=done)
    async with ctx.store.begin() as tx:
        await audit_in(tx, ctx.hub, actor=actor, action="notice_signed", target=notice_id,
                       ip=ip, detail={"count": done})
    progress.update(stage="signed")
    return done


async def mark_ready(ctx: Notices, notice_id: str, actor: str, ip: str | None) -> None:
    """``draft → ready`` when every recipient has what it needs; unmatched parts are dropped."""
    r = await report(ctx, notice_id)
    if r.recipients == 0:
        raise NoticeError("no_recipients", "送付先リストを取り込んでください",
                          "Import the recipient list first")
    if r.mode != "none" and (r.unsigned or r.parts == 0):
        raise NoticeError("unsigned", "すべてのPDFに電子署名してから進めてください",
                          "Sign every PDF first")
    if r.mode == "per_recipient" and r.unmatched_recipients:
        raise NoticeError("unmatched", "PDFが突合できていない送付先があります",
                          "Some recipients have no matched PDF")
    if r.unmatched_parts:
        async with ctx.store.begin() as tx:
            used = select(notice_recipients.c.file_id).where(
                notice_recipients.c.notice_id == notice_id,
                notice_recipients.c.file_id.is_not(None))
            gone = [str(x[0]) for x in (await tx.conn.execute(select(notice_files.c.id).where(
                notice_files.c.notice_id == notice_id, notice_files.c.kind == "part",
                notice_files.c.id.not_in(used)))).all()]
            await tx.conn.execute(delete(notice_files).where(notice_files.c.id.in_(gone)))
        for blob in gone:
            await ctx.files.delete(blob)
    await set_status(ctx, notice_id, ("draft",), "ready", actor, ip)


async def reopen(ctx: Notices, notice_id: str, actor: str, ip: str | None) -> None:
    await set_status(ctx, notice_id, ("ready",), "draft", actor, ip)
