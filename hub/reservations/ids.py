"""Reservation IDs and their import file (R2, R3). Pure: bytes in, rows or line errors out.

The ward issues each resident an 8-character alphanumeric reservation ID bound to one office
(a 4-digit code) and hands staff a CSV whose layout the ward sets (seed 002 §5.5.3(2)). The
mapping of columns is a setting (``Layout``): by header name or by position, with or without a
header row. Files come from Excel on Windows (cp932, or UTF-8 with a BOM) or from other systems
(UTF-8): the encoding is detected (a BOM, else strict UTF-8, else cp932).

IDs are normalised before anything else: full-width letters and digits become half-width
(NFKC), letters upper case, surrounding spaces dropped; what is then not 8 of ``A-Z0-9`` is an
error with its line. The import is all-or-nothing: any bad line refuses the whole file.
"""

from __future__ import annotations

import csv
import io
import re
import unicodedata
from collections.abc import Sequence
from dataclasses import dataclass, field

ID_RE = re.compile(r"^[A-Z0-9]{8}$")
OFFICE_RE = re.compile(r"^[0-9]{4}$")
MAX_BYTES = 20 * 1024 * 1024  # ~500,000 rows: more is not one ward's file


@dataclass(frozen=True)
class Layout:
    """Where the ID and the office code are: column names (``header=True``) or 1-based column
    numbers (``header=False``, or with a header row to skip: ``skip_header=True``)."""

    id_column: str = "予約ID"
    office_column: str = "区民事務所コード"
    header: bool = True
    id_position: int = 1
    office_position: int = 2
    skip_header: bool = False


@dataclass(frozen=True)
class LineError:
    line: int  # 1-based line in the file
    code: str  # stable: bad_id | bad_office | missing_column | duplicate | conflict | empty
    value: str = ""  # the offending value, cut short (IDs are not personal data)


@dataclass
class Parsed:
    rows: dict[str, str] = field(default_factory=dict)  # id -> office code
    errors: list[LineError] = field(default_factory=list)
    encoding: str = ""
    lines: int = 0


def normalise_id(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw).strip().upper()


def normalise_office(raw: str) -> str:
    return unicodedata.normalize("NFKC", raw).strip()


def decode(data: bytes) -> tuple[str, str]:
    """The text and the encoding it was read with (``utf-8-sig``, ``utf-8`` or ``cp932``)."""
    if data.startswith(b"\xef\xbb\xbf"):
        return data[3:].decode("utf-8"), "utf-8-sig"
    try:
        return data.decode("utf-8"), "utf-8"
    except UnicodeDecodeError:
        return data.decode("cp932"), "cp932"  # may raise: neither, refused by the caller


def parse(data: bytes, layout: Layout = Layout()) -> Parsed:
    """Every row of the file, or every line that is wrong (then nothing may be imported)."""
    out = Parsed()
    if len(data) > MAX_BYTES:
        out.errors.append(LineError(0, "too_large"))
        return out
    try:
        if b"\x00" in data:  # UTF-16, a spreadsheet file, a binary: not a CSV text
            raise UnicodeDecodeError("csv", data, 0, 1, "NUL byte")
        text, out.encoding = decode(data)
    except UnicodeDecodeError:
        out.errors.append(LineError(0, "bad_encoding"))
        return out
    reader = csv.reader(io.StringIO(text, newline=""))
    id_at, office_at = layout.id_position - 1, layout.office_position - 1
    header_due = layout.header or layout.skip_header
    for row in reader:
        line = reader.line_num
        out.lines = line
        if not any(cell.strip() for cell in row):
            continue  # blank lines (Excel adds them at the end)
        if header_due:
            header_due = False
            if layout.header:
                names = [normalise_office(c) for c in row]
                if layout.id_column not in names or layout.office_column not in names:
                    out.errors.append(LineError(line, "missing_column",
                                                f"{layout.id_column}, {layout.office_column}"))
                    return out
                id_at = names.index(layout.id_column)
                office_at = names.index(layout.office_column)
            continue
        _row(out, row, line, id_at, office_at)
    if not out.rows and not out.errors:
        out.errors.append(LineError(0, "empty"))
    return out


def _row(out: Parsed, row: Sequence[str], line: int, id_at: int, office_at: int) -> None:
    if max(id_at, office_at) >= len(row):
        out.errors.append(LineError(line, "missing_column"))
        return
    rid, office = normalise_id(row[id_at]), normalise_office(row[office_at])
    if not ID_RE.match(rid):
        out.errors.append(LineError(line, "bad_id", row[id_at].strip()[:20]))
        return
    if not OFFICE_RE.match(office):
        out.errors.append(LineError(line, "bad_office", row[office_at].strip()[:20]))
        return
    if rid in out.rows:
        if out.rows[rid] != office:  # the same ID bound to two offices in one file
            out.errors.append(LineError(line, "conflict", rid))
        return  # the same row twice: harmless
    out.rows[rid] = office
