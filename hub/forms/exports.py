"""A form's submissions as CSV (UTF-8 with BOM, or cp932 for older Excel and business systems)
and as a zip of that CSV plus every attachment as ``<reference>/<filename>`` (no aiohttp here).

Both are produced in pieces (``csv_chunks``, ``zip_chunks``): a form with thousands of
submissions and their files never sits whole in memory. Answers are opened a page of rows at a
time, labelled by the **published** version's fields (columns: reference, status, channel,
submitted_at, then each field, compound ones split), dates as the field displays them.

cp932: characters it cannot hold (𠮷, some emoji) become ``〓`` (the register's customary mark
for a missing glyph, so a changed name is visible rather than silently "corrected") and are
counted in ``Tally.replaced``; the page says so and the count goes to the audit trail. A cell
starting with ``= + - @`` gets a leading ``'`` so a spreadsheet never runs it as a formula.
"""

from __future__ import annotations

import codecs
import csv
import io
import zipfile
from collections import defaultdict
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import select

from hub.forms import staff_views
from hub.forms.context import Forms
from hub.forms.model import Form
from hub.forms.records import open_field, open_json
from hub.forms.tables import form_files, form_submissions

Encoding = Literal["utf-8-sig", "cp932"]
JST = ZoneInfo("Asia/Tokyo")
PAGE = 200
CHUNK = 64 * 1024
MISSING = "〓"
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
STATUS_TEXT = {"ja": {"received": "受付", "in_review": "審査中", "returned": "差し戻し",
                      "completed": "完了", "awaiting_payment": "支払待ち"},
               "en": {"received": "received", "in_review": "in review",
                      "returned": "returned", "completed": "completed",
                      "awaiting_payment": "awaiting payment"}}
CHANNEL_TEXT = {"ja": {"web": "オンライン", "staff": "職員入力"},
                "en": {"web": "online", "staff": "entered by staff"}}


@dataclass
class Tally:
    rows: int = 0
    replaced: int = 0
    files: int = 0


# the same JIS characters under the Unicode points Windows' cp932 uses for them (the
# well-known JIS X 0208 mapping differences): not a substitution, so not counted
_CP932_SAME = str.maketrans({"\u2014": "\u2015", "\u301c": "\uff5e", "\u2016": "\u2225",
                             "\u2212": "\uff0d", "\u00a2": "\uffe0", "\u00a3": "\uffe1",
                             "\u00ac": "\uffe2"})


def encode(text: str, encoding: Encoding, tally: Tally) -> bytes:
    if encoding == "utf-8-sig":
        return text.encode("utf-8")
    text = text.translate(_CP932_SAME)
    try:
        return text.encode("cp932")
    except UnicodeEncodeError:
        out = bytearray()
        for ch in text:
            try:
                out += ch.encode("cp932")
            except UnicodeEncodeError:
                tally.replaced += 1
                out += MISSING.encode("cp932")
        return bytes(out)


def _safe(cell: str) -> str:
    return "'" + cell if cell.startswith(_FORMULA) else cell


async def _pages(ctx: Forms, form_id: str) -> AsyncIterator[list[Any]]:
    last: tuple[Any, str] | None = None
    while True:
        q = select(form_submissions).where(form_submissions.c.form_id == form_id)
        if last is not None:
            q = q.where((form_submissions.c.submitted_at > last[0])
                        | ((form_submissions.c.submitted_at == last[0])
                           & (form_submissions.c.id > last[1])))
        q = q.order_by(form_submissions.c.submitted_at, form_submissions.c.id).limit(PAGE)
        async with ctx.store.read() as tx:
            rows = list((await tx.conn.execute(q)).all())
        if not rows:
            return
        yield rows
        last = (rows[-1].submitted_at, str(rows[-1].id))


async def files_of(ctx: Forms, sids: list[str]) -> dict[str, list[tuple[str, str, str]]]:
    """``{submission: [(blob id, field, filename opened)]}``."""
    async with ctx.store.read() as tx:
        rows = (await tx.conn.execute(select(form_files).where(
            form_files.c.submission_id.in_(sids)).order_by(form_files.c.created_at,
                                                            form_files.c.id))).all()
    out: dict[str, list[tuple[str, str, str]]] = defaultdict(list)
    for r in rows:
        out[str(r.submission_id)].append(
            (str(r.id), str(r.field), open_field(ctx, str(r.id), "filename", r.filename)))
    return out


def _by_field(files: list[tuple[str, str, str]]) -> dict[str, list[str]]:
    got: dict[str, list[str]] = defaultdict(list)
    for _blob, fld, name in files:
        got[fld].append(name)
    return got


def header(form: Form, lang: str) -> list[str]:
    fixed = (["受付番号", "状態", "経路", "受付日時"] if lang == "ja"
             else ["reference", "status", "channel", "submitted_at"])
    return fixed + [c.header for c in staff_views.columns(form, lang)]


async def rows(ctx: Forms, form_id: str, form: Form, lang: str,
               files_out: list[tuple[str, str, str]] | None = None) -> AsyncIterator[list[str]]:
    """The header, then one list of cells per submission. ``files_out`` collects
    ``(reference, blob, filename)`` for the zip."""
    yield header(form, lang)
    async for page in _pages(ctx, form_id):
        files = await files_of(ctx, [str(r.id) for r in page])
        for r in page:
            answers = open_json(ctx, str(r.id), "answers", r.answers) or {}
            mine = files.get(str(r.id), [])
            if files_out is not None:
                files_out.extend((str(r.reference), b, n) for b, _f, n in mine)
            at = r.submitted_at.astimezone(JST).strftime("%Y-%m-%d %H:%M")
            yield [str(r.reference), STATUS_TEXT[lang].get(r.status, str(r.status)),
                   CHANNEL_TEXT[lang].get(r.channel, str(r.channel)), at,
                   *staff_views.row_cells(form, answers, lang, _by_field(mine))]


async def csv_chunks(ctx: Forms, form_id: str, form: Form, lang: str, encoding: Encoding,
                     tally: Tally, files_out: list[tuple[str, str, str]] | None = None
                     ) -> AsyncIterator[bytes]:
    """The CSV in pieces of about 64 KiB: the BOM first for UTF-8, CRLF line ends."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    pending = bytearray(codecs.BOM_UTF8 if encoding == "utf-8-sig" else b"")
    first = True
    async for cells in rows(ctx, form_id, form, lang, files_out):
        writer.writerow(cells if first else [_safe(c) for c in cells])
        tally.rows += 0 if first else 1
        first = False
        pending += encode(buf.getvalue(), encoding, tally)
        buf.seek(0)
        buf.truncate()
        if len(pending) >= CHUNK:
            yield bytes(pending)
            pending.clear()
    if pending:
        yield bytes(pending)


class _Sink(io.RawIOBase):
    """A write-only, non-seekable stream that keeps what was written until taken."""

    def __init__(self) -> None:
        self.data = bytearray()

    def writable(self) -> bool:
        return True

    def write(self, b: Any) -> int:
        self.data += b
        return len(b)

    def take(self) -> bytes:
        out = bytes(self.data)
        self.data.clear()
        return out


def _entry(reference: str, filename: str, seen: set[str]) -> str:
    clean = filename.replace("/", "_").replace("\\", "_").lstrip(".") or "file"
    name, n = f"{reference}/{clean}", 1
    while name in seen:
        n += 1
        stem, dot, ext = clean.rpartition(".")
        name = f"{reference}/{stem}-{n}.{ext}" if dot else f"{reference}/{clean}-{n}"
    seen.add(name)
    return name


async def zip_chunks(ctx: Forms, form_id: str, form: Form, lang: str, encoding: Encoding,
                     tally: Tally) -> AsyncIterator[bytes]:
    """``submissions.csv`` then each attachment (exact bytes) as ``<reference>/<filename>``."""
    sink = _Sink()
    files: list[tuple[str, str, str]] = []
    with zipfile.ZipFile(sink, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        with zf.open("submissions.csv", "w", force_zip64=True) as out:
            async for chunk in csv_chunks(ctx, form_id, form, lang, encoding, tally, files):
                out.write(chunk)
                if len(sink.data) >= CHUNK:
                    yield sink.take()
        seen: set[str] = set()
        for reference, blob, filename in files:
            data = await ctx.intake.read(blob)
            zf.writestr(_entry(reference, filename, seen), data)
            tally.files += 1
            yield sink.take()
    yield sink.take()
