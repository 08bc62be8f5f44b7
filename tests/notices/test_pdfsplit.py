"""Splitting a batch PDF per resident (N2): by the key on each first page or by a fixed page
count, with every problem named and nothing of other residents carried into a part."""

from __future__ import annotations

import io
import re
from typing import Any, cast

import pytest
from notices_pdf_support import make_notice_pdf
from pypdf import PdfReader, PdfWriter
from pypdf.generic import (
    ArrayObject,
    DictionaryObject,
    FloatObject,
    NameObject,
    RectangleObject,
    TextStringObject,
)

from hub.notices.pdfsplit import DEFAULT_PATTERN, Split, split_by_key, split_by_pages

KEYS = ["A0001", "A0002", "A0003"]
PATTERN = r"通知番号: (\w+)"


def codes(split: Split) -> list[tuple[int, str]]:
    return [(p.line, p.code) for p in split.problems]


def text_of(pdf: bytes) -> list[str]:
    return [page.extract_text() for page in PdfReader(io.BytesIO(pdf)).pages]


def test_reportlab_cid_text_is_readable() -> None:
    assert "通知番号: A0001" in text_of(make_notice_pdf(["A0001"], 1))[0]


@pytest.mark.parametrize("pattern", [PATTERN, re.compile(PATTERN), DEFAULT_PATTERN])
def test_split_by_key(pattern: str | re.Pattern[str]) -> None:
    split = split_by_key(make_notice_pdf(KEYS, pages_each=2), pattern)
    assert split.problems == []
    assert [(p.index, p.key, p.first_page, p.page_count) for p in split.parts] == [
        (0, "A0001", 1, 2), (1, "A0002", 3, 2), (2, "A0003", 5, 2)]
    texts = text_of(split.parts[1].pdf)
    assert len(texts) == 2
    assert "A0002" in texts[0]
    assert "2ページ目" in texts[1]
    assert all("A0001" not in t and "A0003" not in t for t in texts)


def test_parts_may_have_different_lengths() -> None:
    one = make_notice_pdf(["B1"], pages_each=1)
    three = make_notice_pdf(["B2"], pages_each=3)
    writer = PdfWriter()
    for data in (one, three):
        writer.append(PdfReader(io.BytesIO(data)))
    buf = io.BytesIO()
    writer.write(buf)
    split = split_by_key(buf.getvalue(), PATTERN)
    assert [(p.key, p.first_page, p.page_count) for p in split.parts] == [
        ("B1", 1, 1), ("B2", 2, 3)]


def test_keys_are_nfkc_normalised() -> None:
    split = split_by_key(make_notice_pdf(["Ａ００１"], 1), PATTERN)
    assert [p.key for p in split.parts] == ["A001"]


def test_scanned_pdf_has_no_text_layer() -> None:
    split = split_by_key(make_notice_pdf(KEYS, text_layer=False), PATTERN)
    assert split.parts == []
    assert codes(split) == [(0, "no_text_layer")]
    problem = split.problems[0]
    assert "スキャン" in problem.ja
    assert "ページ数で分割" in problem.ja
    assert "scanned" in problem.en
    assert "fixed number of pages" in problem.en
    # the fixed page count still works for it
    fixed = split_by_pages(make_notice_pdf(KEYS, text_layer=False), 2)
    assert [p.page_count for p in fixed.parts] == [2, 2, 2]
    assert fixed.problems == []


def test_pages_before_first_key() -> None:
    split = split_by_key(make_notice_pdf(KEYS, lead_pages=2), PATTERN)
    assert codes(split) == [(1, "pages_before_first_key")]
    assert "3" in split.problems[0].en
    assert split.parts == []


def test_duplicate_key_names_both_pages() -> None:
    split = split_by_key(make_notice_pdf(["A1", "A2", "ａ1"]), PATTERN)
    assert codes(split) == [(5, "duplicate_key")]
    assert "page 1" in split.problems[0].en
    assert "A1" not in split.problems[0].en
    assert split.parts == []


def test_no_key_anywhere() -> None:
    assert codes(split_by_key(make_notice_pdf(KEYS), r"宛名番号: (\w+)")) == [(0, "no_key_found")]


def test_bad_pattern() -> None:
    assert codes(split_by_key(make_notice_pdf(KEYS), "通知番号: (")) == [(0, "bad_pattern")]


def test_pattern_without_group_uses_the_whole_match() -> None:
    split = split_by_key(make_notice_pdf(KEYS), r"A\d{4}")
    assert [p.key for p in split.parts] == KEYS


@pytest.mark.parametrize("data", [b"", b"not a pdf", b"%PDF-1.4\n%%EOF", b"%PDF-1.7\n1 0 obj"])
def test_corrupt_pdf(data: bytes) -> None:
    assert codes(split_by_key(data, PATTERN)) in ([(0, "pdf_unreadable")], [(0, "no_pages")])
    assert codes(split_by_pages(data, 1)) in ([(0, "pdf_unreadable")], [(0, "no_pages")])


def encrypt(data: bytes, user: str, owner: str) -> bytes:
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.encrypt(user_password=user, owner_password=owner, algorithm="AES-128")
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def test_encrypted_pdf_with_a_user_password_is_unreadable() -> None:
    locked = encrypt(make_notice_pdf(KEYS), "secret", "owner")
    assert codes(split_by_key(locked, PATTERN)) == [(0, "pdf_unreadable")]


def test_owner_password_only_pdf_is_split() -> None:
    restricted = encrypt(make_notice_pdf(KEYS), "", "owner")
    split = split_by_key(restricted, PATTERN)
    assert split.problems == []
    assert len(split.parts) == 3
    assert not PdfReader(io.BytesIO(split.parts[0].pdf)).is_encrypted


def test_split_by_pages() -> None:
    data = make_notice_pdf(KEYS, pages_each=2)
    split = split_by_pages(data, 2)
    assert [(p.index, p.key, p.first_page, p.page_count) for p in split.parts] == [
        (0, None, 1, 2), (1, None, 3, 2), (2, None, 5, 2)]
    assert codes(split_by_pages(data, 4)) == [(0, "pages_not_divisible")]
    assert codes(split_by_pages(data, -1)) == [(0, "bad_page_count")]
    whole = split_by_pages(data, 0)  # one PDF for everyone
    assert [(p.first_page, p.page_count) for p in whole.parts] == [(1, 6)]


def with_leaky_extras(data: bytes) -> bytes:
    """The batch with an outline, document metadata, XMP and a link from page 1 to page 5."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(data)))
    writer.add_metadata({"/Title": "練馬 太郎1 ほか", "/Subject": "resident1@example.jp"})
    for number in range(len(writer.pages)):
        writer.add_outline_item(title=f"練馬 太郎{number}", page_number=number)
    writer.add_uri(0, "https://www.city.nerima.tokyo.jp/", RectangleObject([72, 700, 200, 720]))
    annots = cast(ArrayObject, writer.pages[0]["/Annots"])
    goto = DictionaryObject({
        NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/Link"),
        NameObject("/Rect"): ArrayObject([FloatObject(v) for v in (72, 600, 200, 620)]),
        NameObject("/Dest"): ArrayObject([writer.pages[4].indirect_reference,
                                          NameObject("/Fit")]),
    })
    annots.append(writer._add_object(goto))
    note = DictionaryObject({
        NameObject("/Type"): NameObject("/Annot"), NameObject("/Subtype"): NameObject("/Text"),
        NameObject("/Rect"): ArrayObject([FloatObject(v) for v in (72, 500, 90, 520)]),
        NameObject("/Contents"): TextStringObject("確認済み"),
        NameObject("/P"): writer.pages[0].indirect_reference,
    })
    annots.append(writer._add_object(note))
    buf = io.BytesIO()
    writer.write(buf)
    return buf.getvalue()


def test_parts_carry_nothing_of_other_residents() -> None:
    source = with_leaky_extras(make_notice_pdf(KEYS))
    part = split_by_key(source, PATTERN).parts[0].pdf
    reader = PdfReader(io.BytesIO(part))
    assert len(reader.pages) == 2
    assert reader.metadata == {"/Producer": "madoguchi"}
    assert reader.outline == []
    assert "/Metadata" not in cast(DictionaryObject, reader.trailer["/Root"])
    annots = [a.get_object() for a in cast(ArrayObject, reader.pages[0]["/Annots"])]
    assert sorted(str(a["/Subtype"]) for a in annots) == ["/Link", "/Text"]  # the GoTo is gone
    assert all("/P" not in a for a in annots)
    assert b"A0003" not in part
    assert "太郎".encode("utf-16-be") not in part
    assert len(part) < len(source) // 2


def test_fonts_are_shared_within_a_part() -> None:
    part = split_by_key(make_notice_pdf(["A1"], pages_each=5), PATTERN).parts[0].pdf
    reader = PdfReader(io.BytesIO(part))
    fonts = {cast(Any, page)["/Resources"]["/Font"]["/F1"].indirect_reference.idnum
             for page in reader.pages}
    assert len(fonts) == 1


def test_a_thousand_pages_make_five_hundred_parts() -> None:
    """The bench's batch size (``madoguchi bench notices`` times it as split_1000_pages_s)."""
    data = make_notice_pdf([f"A{i:04d}" for i in range(500)], pages_each=2)
    split = split_by_key(data, PATTERN)
    assert split.problems == []
    assert len(split.parts) == 500
    assert split.parts[-1].first_page == 999
    assert [p.key for p in split.parts[:2]] == ["A0000", "A0001"]


def _shared_resources(pdf: bytes) -> bytes:
    """The pages' images moved into one resource dictionary that every page points at, as
    some batch printers write it."""
    writer = PdfWriter(clone_from=PdfReader(io.BytesIO(pdf)))
    shared = DictionaryObject()
    for page in writer.pages:
        shared.update(page["/Resources"].get_object()["/XObject"].get_object())
    ref = writer._add_object(shared)
    for page in writer.pages:
        resources = page["/Resources"].get_object()
        resources[NameObject("/XObject")] = ref
    out = io.BytesIO()
    writer.write(out)
    return out.getvalue()


def _images_in(pdf: bytes) -> int:
    return len(re.findall(rb"/Subtype\s*/Image", pdf))


def test_a_shared_resource_dictionary_does_not_carry_other_residents_images() -> None:
    source = _shared_resources(make_notice_pdf(["A"], 3, text_layer=False))  # 3 images
    first = PdfReader(io.BytesIO(source)).pages[0]
    assert len(first["/Resources"]["/XObject"]) == 3  # the source really shares them
    split = split_by_pages(source, 1)
    assert not split.problems
    for part in split.parts:
        page = PdfReader(io.BytesIO(part.pdf)).pages[0]
        assert len(page["/Resources"]["/XObject"]) == 1
        assert _images_in(part.pdf) == 1, "another page's image is still in the file"
