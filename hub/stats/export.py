"""CSV export of a report: the chosen columns in their order, Japanese headers by default, as
UTF-8 with BOM or as cp932 (Shift_JIS as Excel on the ward's Windows PCs reads it).

Why streamed in pieces: a fiscal year per counter per day for every site is tens of thousands of
rows; a report grouped by day (or week) is read one month (eight weeks) at a time and written
row by row, so neither the hub's memory nor the time to the first byte grows with the range.
``export_rows`` and ``write_csv`` need no aiohttp (the benchmark times them); the route only
copies ``csv_chunks`` to its ``StreamResponse``.

cp932 cannot hold every character (a JIS X 0213 kanji such as 𠮷 in a name, an em dash): such
characters become a listed look-alike (— → ―, 𠮷 → 吉), else their NFKC form if cp932 has it,
else 〓 (the geta mark Japanese print uses for a missing kanji). An export never fails on a
character. Cells that a spreadsheet would run as a formula are defused with a leading ``'``.
"""

from __future__ import annotations

import codecs
import csv
import io
import unicodedata
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import replace
from datetime import datetime
from typing import Any, BinaryIO, Literal

from hub.audit.service import append, audit_key
from hub.settings import HubSettings
from hub.stats import periods
from hub.stats.columns import CATALOGUE, cell
from hub.stats.periods import Period
from hub.stats.report import Scope, report
from hub.store import HubStore

Encoding = Literal["utf-8-sig", "cp932"]
ENCODINGS: tuple[Encoding, ...] = ("utf-8-sig", "cp932")
GETA = "〓"
LOOKALIKES = {"\u2014": "\u2015", "\u2e3a": "\u2015", "\U00020bb7": "吉", "\u9dd7": "鴎"}
_FORMULA = ("=", "+", "-", "@", "\t", "\r")
CHUNK_BYTES = 64 * 1024


def _cp932_substitute(exc: UnicodeError) -> tuple[str, int]:
    if not isinstance(exc, UnicodeEncodeError):
        raise exc
    out = []
    for ch in exc.object[exc.start:exc.end]:
        for candidate in (LOOKALIKES.get(ch, ""), unicodedata.normalize("NFKC", ch)):
            try:
                if candidate:
                    candidate.encode("cp932")
                    out.append(candidate)
                    break
            except UnicodeEncodeError:
                continue
        else:
            out.append(GETA)
    return "".join(out), exc.end


codecs.register_error("madoguchi-cp932", _cp932_substitute)


def encode(text: str, encoding: Encoding) -> bytes:
    if encoding == "cp932":
        return text.encode("cp932", "madoguchi-cp932")
    return text.encode("utf-8")


def _cell_text(value: str | float | int | None) -> str | float | int:
    if value is None:
        return ""
    if isinstance(value, str) and value.startswith(_FORMULA):
        return "'" + value
    return value


def pieces(scope: Scope) -> Iterator[Scope]:
    """The scope in the pieces the export reads one at a time: months for a report by day,
    eight-week blocks for one by week, else the whole period. Pieces are plain date ranges,
    so "last year" of each is its own dates a year earlier."""
    if "day" in scope.group:
        parts: Iterator[Period] = periods.split(scope.period, 1)
    elif "week" in scope.group:
        parts = periods.split_weeks(scope.period, 8)
    else:
        yield scope
        return
    for part in parts:
        yield replace(scope, period=Period("range", part.start, part.end))


async def export_rows(store: HubStore, scope: Scope, columns: Sequence[str], *,
                      lang: str = "ja", now: datetime | None = None
                      ) -> AsyncIterator[list[str | float | int]]:
    """The header (Japanese unless ``lang`` = "en"), then one list of cells per report row,
    in the report's order. ``columns``: keys of ``columns.CATALOGUE`` (already validated)."""
    cols = [CATALOGUE[c] for c in columns]
    yield [c.header(lang) for c in cols]
    compare = any(c.last_year for c in cols)
    for part in pieces(scope):
        rep = await report(store, part, compare=compare, now=now, totals=False)
        for row in rep.rows:
            yield [_cell_text(cell(c, part, row, lang)) for c in cols]


async def csv_chunks(store: HubStore, scope: Scope, columns: Sequence[str], *,
                     encoding: Encoding = "utf-8-sig", lang: str = "ja",
                     now: datetime | None = None) -> AsyncIterator[bytes]:
    """The CSV file in chunks of about 64 KiB: BOM first for UTF-8, CRLF line ends (as Excel
    writes them)."""
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    pending: list[bytes] = [codecs.BOM_UTF8] if encoding == "utf-8-sig" else []
    size = sum(len(p) for p in pending)
    async for cells in export_rows(store, scope, columns, lang=lang, now=now):
        writer.writerow(cells)
        data = encode(buf.getvalue(), encoding)
        buf.seek(0)
        buf.truncate()
        pending.append(data)
        size += len(data)
        if size >= CHUNK_BYTES:
            yield b"".join(pending)
            pending, size = [], 0
    if pending:
        yield b"".join(pending)


async def write_csv(store: HubStore, scope: Scope, columns: Sequence[str], out: BinaryIO, *,
                    encoding: Encoding = "utf-8-sig", lang: str = "ja",
                    now: datetime | None = None) -> int:
    """Write the CSV file to ``out``; return the bytes written."""
    written = 0
    async for chunk in csv_chunks(store, scope, columns, encoding=encoding, lang=lang, now=now):
        out.write(chunk)
        written += len(chunk)
    return written


def describe(scope: Scope) -> dict[str, Any]:
    """The scope as the audit trail keeps it."""
    return {"kind": scope.period.kind, "start": scope.period.start.isoformat(),
            "end": scope.period.end.isoformat(),
            "sites": None if scope.sites is None else sorted(scope.sites),
            "group": list(scope.group), "service": scope.service, "counter": scope.counter,
            "staff": scope.staff}


async def record_export(store: HubStore, settings: HubSettings, scope: Scope,
                        columns: Sequence[str], encoding: Encoding, *, actor: str | None,
                        ip: str | None) -> None:
    """Audit an export (``stats_exported``: the period, sites, grouping, columns, encoding)
    before its first row is read."""
    key, key_id = audit_key(settings)
    async with store.begin() as tx:
        await append(tx, actor=actor, action="stats_exported", target="stats_rollup",
                     detail={**describe(scope), "columns": list(columns),
                             "encoding": encoding, "format": "csv"},
                     ip=ip, key=key, key_id=key_id)
