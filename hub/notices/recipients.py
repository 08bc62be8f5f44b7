"""A notice's recipient list (N1, spec §6(7)): bytes in, rows or every problem out.

Staff export the list from a business system or Excel, so it arrives as CSV (UTF-8 with or
without a BOM, or cp932: detected as in ``hub.reservations.ids``) or as an xlsx workbook
(detected by the zip magic bytes, never by the file name, because browsers and staff rename
files). A header row is required: the name and e-mail columns are found by their header
(氏名/宛名/name, メールアドレス/e-mail), the key that matches a resident with their part of a
split PDF by a column staff choose (default: a known name such as 通知番号). Every other
column is kept, in order, as the notice's data (a ``メッセージ`` column is a per-resident
message, N4).

All or nothing: any bad line refuses the whole list, and every bad line is named at once so
staff fix the file in one go. Problem texts name the line and the rule, never the name or the
address (they end up in logs, screenshots and support mails). A cell beginning with ``=``,
``+``, ``-`` or ``@`` is data like any other: it is escaped only when written back to a CSV.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import re
import unicodedata
import zipfile
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field

from hub.reservations.ids import decode

MAX_ROWS = 50_000
MAX_PROBLEMS = 200  # beyond this the list is surely the wrong file: say how many more
MAX_XLSX_UNPACKED = 200 * 1024 * 1024  # a zip bomb is refused before openpyxl reads it

NAME_COLUMNS = ("氏名", "宛名", "名前", "name")
EMAIL_COLUMNS = ("メールアドレス", "メール", "e-mail", "email", "mail", "e-mailアドレス")
KEY_COLUMNS = ("通知番号", "宛名番号", "通知書番号", "管理番号", "key")
MESSAGE_COLUMNS = ("メッセージ", "message")

_LOCAL_RE = re.compile(r"^[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+(\.[A-Za-z0-9!#$%&'*+/=?^_`{|}~-]+)*$")
_LABEL_RE = re.compile(r"^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$")
_TLD_RE = re.compile(r"^([a-z]{2,63}|xn--[a-z0-9-]{1,59})$")


@dataclass(frozen=True)
class Problem:
    """One thing wrong with an uploaded file. ``line``: the CSV line, xlsx row or PDF page it
    is about (1-based; 0 = the whole file). ``code`` is stable (tests, the UI and the API key
    on it); ``ja``/``en`` are for people and never hold a name, an address or PDF text."""

    line: int
    code: str
    ja: str
    en: str


class ImportProblems(Exception):
    """The list was refused; ``problems`` says why, line by line."""

    def __init__(self, problems: Sequence[Problem]) -> None:
        super().__init__(f"{len(problems)} problem(s) in the recipient list")
        self.problems = list(problems)


@dataclass(frozen=True)
class RecipientRow:
    line: int  # CSV line or xlsx row where the record starts (1-based)
    name: str
    email: str  # NFKC, trimmed, domain lower-cased
    key: str | None  # NFKC + trimmed; None without a key column or with an empty cell
    data: dict[str, str] = field(default_factory=dict)  # every other column, in file order
    message: str | None = None  # the per-recipient message column (also in ``data``)


@dataclass(frozen=True)
class RecipientList:
    columns: tuple[str, ...]  # the header as written (trimmed), in file order
    rows: list[RecipientRow]
    name_column: str = ""
    email_column: str = ""
    key_column: str | None = None
    encoding: str = ""  # utf-8-sig | utf-8 | cp932 | xlsx


def match_key(raw: str) -> str:
    """The form keys are compared in: NFKC (full-width digits and letters), trimmed, case-folded."""
    return unicodedata.normalize("NFKC", raw).strip().casefold()


def _header_key(raw: str) -> str:
    return re.sub(r"\s+", "", unicodedata.normalize("NFKC", raw)).casefold()


def normalise_email(raw: str) -> str | None:
    """The address as stored (NFKC, trimmed, domain lower case), or None when it is not one.

    A deliberate subset of RFC 5321: an ASCII dot-atom local part and a DNS host name with a
    letter TLD. Quoted local parts and internationalised addresses are refused: the ward's
    mail relay and residents' phones do not handle them reliably."""
    addr = unicodedata.normalize("NFKC", raw).strip()
    if addr.count("@") != 1 or len(addr) > 254:
        return None
    local, domain = addr.split("@")
    domain = domain.lower()
    if not local or len(local) > 64 or not _LOCAL_RE.match(local):
        return None
    labels = domain.split(".")
    if len(labels) < 2 or len(domain) > 253:
        return None
    if not all(_LABEL_RE.match(label) for label in labels) or not _TLD_RE.match(labels[-1]):
        return None
    return f"{local}@{domain}"


def _p(line: int, code: str, ja: str, en: str) -> Problem:
    if line > 0:
        return Problem(line, code, f"{line}行目: {ja}", f"Line {line}: {en}")
    return Problem(line, code, ja, en)


def _cell(value: object) -> str:
    """An xlsx cell as the text staff see (numbers without a trailing .0, dates as ISO)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "TRUE" if value else "FALSE"
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    if isinstance(value, dt.datetime):
        return value.date().isoformat() if value.time() == dt.time() else value.isoformat()
    if isinstance(value, dt.date | dt.time):
        return value.isoformat()
    return str(value)


def _csv_records(data: bytes) -> tuple[Iterator[tuple[int, list[str]]], str]:
    if b"\x00" in data:  # UTF-16, an .xls, a binary: not a CSV text
        raise UnicodeDecodeError("csv", data, 0, 1, "NUL byte")
    text, encoding = decode(data)

    def records() -> Iterator[tuple[int, list[str]]]:
        reader = csv.reader(io.StringIO(text, newline=""))
        start = 1
        for row in reader:
            yield start, row
            start = reader.line_num + 1

    return records(), encoding


def _xlsx_records(data: bytes) -> Iterator[tuple[int, list[str]]]:
    import openpyxl  # type: ignore[import-untyped]  # only for xlsx uploads: slow to import

    with zipfile.ZipFile(io.BytesIO(data)) as zf:
        if sum(i.file_size for i in zf.infolist()) > MAX_XLSX_UNPACKED:
            raise ValueError("xlsx unpacks too large")
    wb = openpyxl.load_workbook(io.BytesIO(data), read_only=True, data_only=True)
    try:
        ws = wb.worksheets[0]
        for number, values in enumerate(ws.iter_rows(values_only=True), start=1):
            yield number, [_cell(v) for v in values]
    finally:
        wb.close()


def _find(names: list[str], wanted: Sequence[str]) -> int | None:
    keys = [_header_key(n) for n in names]
    for w in wanted:
        if _header_key(w) in keys:
            return keys.index(_header_key(w))
    return None


def parse_recipients(data: bytes, key_column: str | None = None, *,
                     max_rows: int = MAX_ROWS) -> RecipientList:
    """The list in ``data`` (CSV or xlsx), or ``ImportProblems`` listing every bad line.

    ``key_column``: the header of the column that matches PDF parts (staff choose it); None
    looks for a known one (通知番号, 宛名番号, …) and goes without keys if there is none."""
    if not data.strip(b" \t\r\n\xef\xbb\xbf"):
        raise ImportProblems([_p(0, "empty", "ファイルが空です", "The file is empty")])
    encoding = "xlsx"
    try:
        if data.startswith(b"PK\x03\x04"):
            records: Iterator[tuple[int, list[str]]] = _xlsx_records(data)
        elif data.startswith(b"\xd0\xcf\x11\xe0"):
            raise ImportProblems([_p(0, "xls_not_supported",
                                     "古いExcel形式（.xls）は読めません。xlsxかCSVで保存してください",
                                     "Old Excel files (.xls) cannot be read; save as xlsx or CSV")])
        else:
            records, encoding = _csv_records(data)
        return _parse(records, key_column, max_rows, encoding)
    except UnicodeDecodeError:
        raise ImportProblems([_p(0, "bad_encoding",
                                 "文字コードを判別できません（UTF-8またはShift_JISのCSVにしてください）",
                                 "The text encoding is not recognised (use UTF-8 or Shift_JIS "
                                 "CSV)")]) from None
    except ImportProblems:
        raise
    except Exception:  # openpyxl and zipfile raise many kinds for a damaged workbook
        raise ImportProblems([_p(0, "bad_xlsx",
                                 "Excelファイルを読めません（壊れているか形式が違います）",
                                 "The Excel file cannot be read (damaged or not xlsx)")]) from None


def _parse(records: Iterator[tuple[int, list[str]]], key_column: str | None, max_rows: int,
           encoding: str) -> RecipientList:
    header: list[str] | None = None
    header_line = 0
    for line, row in records:
        if any(c.strip() for c in row):
            header, header_line = [c.strip() for c in row], line
            break
    if header is None:
        raise ImportProblems([_p(0, "empty", "ファイルが空です", "The file is empty")])
    while header and not header[-1]:
        header.pop()  # Excel's trailing empty columns
    problems: list[Problem] = []
    name_at, email_at = _find(header, NAME_COLUMNS), _find(header, EMAIL_COLUMNS)
    key_at = _find(header, (key_column,) if key_column else KEY_COLUMNS)
    if name_at is None:
        problems.append(_p(header_line, "missing_column", "氏名（宛名）の列がありません",
                           "there is no name column (氏名 / 宛名 / name)"))
    if email_at is None:
        problems.append(_p(header_line, "missing_column", "メールアドレスの列がありません",
                           "there is no e-mail column (メールアドレス / e-mail)"))
    if key_column and key_at is None:
        problems.append(_p(header_line, "missing_column",
                           f"照合に使う列「{key_column}」がありません",
                           f"there is no key column '{key_column}'"))
    seen_headers: dict[str, int] = {}
    for i, h in enumerate(header):
        if h and _header_key(h) in seen_headers:
            first = seen_headers[_header_key(h)] + 1
            problems.append(_p(header_line, "duplicate_column",
                               f"{first}列目と{i + 1}列目の見出しが同じです",
                               f"columns {first} and {i + 1} have the same heading"))
        seen_headers.setdefault(_header_key(h), i)
    if problems or name_at is None or email_at is None:
        raise ImportProblems(problems)
    columns = tuple(h or f"列{i + 1}" for i, h in enumerate(header))
    message_at = _find(header, MESSAGE_COLUMNS)
    rows = _rows(records, columns, name_at, email_at, key_at, message_at, max_rows, problems)
    if not rows and not problems:
        problems.append(_p(0, "no_rows", "送付先が1件もありません", "The list has no recipients"))
    if problems:
        if len(problems) > MAX_PROBLEMS:
            more = len(problems) - MAX_PROBLEMS
            problems = [*problems[:MAX_PROBLEMS],
                        _p(0, "more_problems", f"ほかに{more}件の誤りがあります",
                           f"{more} more problem(s) not shown")]
        raise ImportProblems(problems)
    return RecipientList(columns, rows, columns[name_at], columns[email_at],
                         None if key_at is None else columns[key_at], encoding)


def _rows(records: Iterator[tuple[int, list[str]]], columns: tuple[str, ...], name_at: int,
          email_at: int, key_at: int | None, message_at: int | None, max_rows: int,
          problems: list[Problem]) -> list[RecipientRow]:
    rows: list[RecipientRow] = []
    by_key: dict[str, int] = {}
    by_email_key: dict[tuple[str, str], int] = {}
    kept = [i for i in range(len(columns)) if i not in (name_at, email_at, key_at)]
    count = 0
    for line, raw in records:
        if not any(c.strip() for c in raw):
            continue  # blank lines (Excel adds them at the end)
        count += 1
        if count > max_rows:
            problems.insert(0, _p(0, "too_many_rows", f"送付先は{max_rows}件までです",
                                  f"The list may have at most {max_rows} recipients"))
            break
        if any(c.strip() for c in raw[len(columns):]):
            problems.append(_p(line, "extra_cells", "見出しのない列に値があります",
                               "there are values in columns without a heading"))
            continue
        cells = [*raw, *[""] * (len(columns) - len(raw))]
        name = cells[name_at].strip()
        email = normalise_email(cells[email_at])
        key = unicodedata.normalize("NFKC", cells[key_at]).strip() if key_at is not None else ""
        folded = match_key(key)
        bad = False
        if folded and folded in by_key:  # checked on bad lines too: say everything at once
            problems.append(_p(line, "duplicate_key", f"照合キーが{by_key[folded]}行目と同じです",
                               f"the key is the same as on line {by_key[folded]}"))
            bad = True
        elif folded:
            by_key[folded] = line
        if not name:
            problems.append(_p(line, "empty_name", "氏名（宛名）が空です", "the name is empty"))
            bad = True
        if not cells[email_at].strip():
            problems.append(_p(line, "empty_email", "メールアドレスが空です",
                               "the e-mail address is empty"))
            bad = True
        elif email is None:
            problems.append(_p(line, "bad_email", "メールアドレスの形式が正しくありません",
                               "the e-mail address is not valid"))
            bad = True
        if bad or email is None:
            continue
        ek = (email.casefold(), folded)
        if ek in by_email_key:
            first = by_email_key[ek]
            problems.append(_p(line, "duplicate_email",
                               f"メールアドレス（と照合キー）が{first}行目と同じです",
                               f"the e-mail address (and key) is the same as on line {first}"))
            continue
        by_email_key[ek] = line
        rows.append(RecipientRow(
            line=line, name=name, email=email, key=key or None,
            data={columns[i]: cells[i] for i in kept},
            message=cells[message_at] if message_at is not None else None))
    return rows
