"""Split one multi-page notice PDF into one small PDF per resident (spec §6(7), N2).

Business systems print a whole batch of notices into one PDF. Each resident's first page
carries a key in its text layer (``通知番号: A0001``): ``split_by_key`` starts a new part at
every page where the staff's pattern finds one. Systems that print no key, or scanned batches,
are split every N pages with ``split_by_pages``.

Each part is written as its own PDF from one parse of the source (fonts and images used by
both of a part's pages are copied once per part). What may hold other residents' data is not
carried over: the document information and XMP metadata, outlines, named destinations,
attachments, forms, document JavaScript, page-level metadata and article threads, and every
annotation except URI links and plain markup (links to other pages would drag those pages into
the part), and every image or form in a shared resource dictionary that the part's pages do not
draw. Page text is only searched, never logged nor put in a problem text.
"""

from __future__ import annotations

import io
import re
import unicodedata
from dataclasses import dataclass, field
from typing import Any

from pypdf import PageObject, PdfReader, PdfWriter
from pypdf.generic import ArrayObject, DictionaryObject, NameObject

from hub.notices.recipients import Problem

DEFAULT_PATTERN = r"通知番号\s*[:：]?\s*([A-Za-z0-9][A-Za-z0-9-]*)"

# Page keys that point at other pages or at document-wide data, never copied.
_PAGE_EXCLUDED = ("/Annots", "/Metadata", "/PieceInfo", "/B", "/AA", "/SeparationInfo",
                  "/Thumb", "/StructParents")
# Annotations kept: they only draw on their page (once stripped of links to other objects).
_MARKUP = {"/Text", "/FreeText", "/Line", "/Square", "/Circle", "/Polygon", "/PolyLine",
           "/Highlight", "/Underline", "/Squiggly", "/StrikeOut", "/Stamp", "/Caret", "/Ink"}
_ANNOT_IGNORED = ["/P", "/Popup", "/IRT", "/Parent", "/A", "/AA", "/Dest", "/StructParent",
                  "/RT", "/ExData"]


@dataclass(frozen=True)
class Part:
    index: int  # 0-based, in page order
    key: str | None  # NFKC + trimmed key found on its first page (None: split by page count)
    first_page: int  # 1-based page of the source
    page_count: int
    pdf: bytes = field(repr=False)


@dataclass
class Split:
    parts: list[Part] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)  # ``line`` = source page (0: all)


def _problem(page: int, code: str, ja: str, en: str) -> Problem:
    if page > 0:
        return Problem(page, code, f"{page}ページ目: {ja}", f"Page {page}: {en}")
    return Problem(page, code, ja, en)


def _unreadable() -> Split:
    return Split(problems=[_problem(
        0, "pdf_unreadable",
        "PDFを読み込めません（壊れているか、パスワードで保護されています）",
        "The PDF cannot be read (it is damaged or protected by a password)")])


def _open(pdf: bytes) -> PdfReader | Split:
    """A reader with every page reachable, or the problem; an owner-password-only PDF (print or
    copy restrictions, common in exports) opens with the empty user password."""
    try:
        reader = PdfReader(io.BytesIO(pdf), strict=False)
        if reader.is_encrypted and not reader.decrypt(""):
            return _unreadable()
        if len(reader.pages) == 0:
            return Split(problems=[_problem(0, "no_pages", "PDFにページがありません",
                                            "The PDF has no pages")])
    except Exception:  # pypdf raises many kinds for damaged files; all mean "cannot read"
        return _unreadable()
    return reader


def _write(reader: PdfReader, first: int, count: int) -> bytes:
    """Pages ``first .. first+count-1`` (0-based) as a new PDF without the source's metadata."""
    writer = PdfWriter()
    for number in range(first, first + count):
        source = reader.pages[number]
        page = writer.add_page(source, excluded_keys=(*_PAGE_EXCLUDED, "/Resources"))
        resources = _drawn_resources(source)
        if resources is not None:
            page[NameObject("/Resources")] = resources.clone(writer)
        annots = _safe_annotations(source.get("/Annots"), writer)
        if annots:
            page[NameObject("/Annots")] = annots
    writer.add_metadata({"/Producer": "madoguchi"})  # replaces pypdf's default, holds nothing
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


_DO = re.compile(rb"/([^\s/\[\]()<>{}%]+)\s+Do\b")


def _drawn_resources(page: PageObject) -> DictionaryObject | None:
    """The page's resources with only the images and forms its content draws. Batch PDFs often
    share one resource dictionary between all pages; copied as it is, every resident's part
    would carry every other resident's images (a scanned signature, a photo), unseen but
    extractable. A page whose content cannot be read keeps its resources as they are."""
    raw = page.get("/Resources")
    resources = raw.get_object() if raw is not None else None
    if not isinstance(resources, DictionaryObject):
        return None
    xobjects = resources.get("/XObject")
    contents = page.get_contents()
    if xobjects is None or contents is None:
        return resources
    try:
        drawn = {m.decode("latin-1") for m in _DO.findall(contents.get_data())}
    except Exception:  # an unreadable content stream: leave the page as it is
        return resources
    own = DictionaryObject(resources)  # a shallow copy: fonts and the rest as they were
    own[NameObject("/XObject")] = DictionaryObject(
        {NameObject(k): v for k, v in xobjects.get_object().items() if k[1:] in drawn})
    return own


def _safe_annotations(raw: Any, writer: PdfWriter) -> ArrayObject:
    out = ArrayObject()
    if raw is None:
        return out
    for ref in raw.get_object():
        annot = ref.get_object()
        if not isinstance(annot, DictionaryObject):
            continue
        subtype = annot.get("/Subtype")
        action = annot.get("/A")
        action = action.get_object() if action is not None else None
        is_uri = (subtype == "/Link" and isinstance(action, DictionaryObject)
                  and action.get("/S") == "/URI")
        if not is_uri and subtype not in _MARKUP:
            continue
        ignored = [f for f in _ANNOT_IGNORED if not (is_uri and f == "/A")]
        copy = annot.clone(writer, ignore_fields=ignored)
        out.append(writer._add_object(copy) if copy.indirect_reference is None
                   else copy.indirect_reference)
    return out


def _text(reader: PdfReader, number: int) -> str:
    try:
        return unicodedata.normalize("NFKC", reader.pages[number].extract_text())
    except Exception:  # a broken content stream on one page: treat it as no text
        return ""


def split_by_key(pdf: bytes, pattern: str | re.Pattern[str] = DEFAULT_PATTERN) -> Split:
    """One part per resident: a page where ``pattern`` matches (its first group is the key,
    else the whole match) starts a part; pages without a match belong to the part before."""
    try:
        regex = re.compile(pattern) if isinstance(pattern, str) else pattern
    except re.error:
        return Split(problems=[_problem(
            0, "bad_pattern", "照合キーの検索パターンが正しくありません",
            "The key search pattern is not valid")])
    opened = _open(pdf)
    if isinstance(opened, Split):
        return opened
    reader = opened
    total = len(reader.pages)
    starts: list[tuple[int, str]] = []
    any_text = False
    for number in range(total):
        text = _text(reader, number)
        if text.strip():
            any_text = True
        found = regex.search(text)
        if found:
            key = found.group(1) if regex.groups else found.group(0)
            starts.append((number, unicodedata.normalize("NFKC", key or "").strip()))
    out = Split()
    if not any_text:
        out.problems.append(_problem(
            0, "no_text_layer",
            "PDFに文字の情報がありません（画像だけのスキャンPDFのようです）。照合キーを読み取れない"
            "ため、ページ数で分割するか、業務システムから文字情報付きのPDFを出力してください",
            "The PDF has no text layer (it seems to be scanned: images only), so keys cannot "
            "be read. Split it by a fixed number of pages, or export the PDF with text from "
            "the business system"))
        return out
    if not starts:
        out.problems.append(_problem(0, "no_key_found", "どのページにも照合キーが見つかりません",
                                     "No page has a key that matches the pattern"))
        return out
    if starts[0][0] > 0:
        out.problems.append(_problem(
            1, "pages_before_first_key",
            f"最初の照合キー（{starts[0][0] + 1}ページ目）より前のページがあります",
            f"there are pages before the first key (on page {starts[0][0] + 1})"))
    seen: dict[str, int] = {}
    for number, key in starts:
        folded = key.casefold()
        if not key:
            out.problems.append(_problem(number + 1, "empty_key", "照合キーが空です",
                                         "the key is empty"))
        elif folded in seen:
            out.problems.append(_problem(
                number + 1, "duplicate_key", f"{seen[folded]}ページ目と同じ照合キーです",
                f"the key is the same as on page {seen[folded]}"))
        else:
            seen[folded] = number + 1
    if out.problems:
        return out
    ends = [n for n, _k in starts[1:]] + [total]
    for index, ((first, key), end) in enumerate(zip(starts, ends, strict=True)):
        count = end - first
        out.parts.append(Part(index, key, first + 1, count, _write(reader, first, count)))
    return out


def split_by_pages(pdf: bytes, pages_per_part: int) -> Split:
    """Parts of ``pages_per_part`` pages each (the total must divide evenly); 0 = the whole
    document as one part (a notice that is the same for everyone, cleaned the same way)."""
    if pages_per_part < 0:
        return Split(problems=[_problem(0, "bad_page_count", "ページ数は1以上にしてください",
                                        "The number of pages must be 1 or more")])
    opened = _open(pdf)
    if isinstance(opened, Split):
        return opened
    total = len(opened.pages)
    size = pages_per_part or total
    if total % size:
        return Split(problems=[_problem(
            0, "pages_not_divisible",
            f"全{total}ページを{size}ページずつに分けられません（{total % size}ページ余ります）",
            f"{total} pages cannot be split into parts of {size} ({total % size} left over)")])
    return Split(parts=[Part(i, None, first + 1, size, _write(opened, first, size))
                        for i, first in enumerate(range(0, total, size))])
