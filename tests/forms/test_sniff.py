"""The type of a file comes from its bytes: names and Content-Type headers decide nothing."""

from __future__ import annotations

from clamd_support import pdf, png
from hypothesis import given
from hypothesis import strategies as st

from hub.forms.sniff import CSV, PDF, TEXT, allowed, normalise, sniff

JPEG = b"\xff\xd8\xff\xe0\x00\x10JFIF\x00\x01\x01\x00\x00\x01\x00\x01\x00\x00" + b"\0" * 64
ZIP = b"PK\x03\x04" + b"\x14\x00" + b"\0" * 60
EXE = b"MZ\x90\x00\x03\x00\x00\x00\x04\x00\x00\x00\xff\xff\x00\x00" + b"\0" * 64
HTML = b"<!DOCTYPE html><html><script>alert(1)</script></html>"


def test_common_uploads_are_recognised() -> None:
    assert sniff(pdf(), "a.pdf") == PDF
    assert sniff(png(), "a.png") == "image/png"
    assert sniff(JPEG, "写真.jpg") == "image/jpeg"
    assert sniff(ZIP, "a.zip") == "application/zip"
    assert sniff(EXE, "a.exe") == "application/x-msdownload"


def test_the_name_does_not_change_what_a_file_is() -> None:
    for name in ("申請書.pdf", "a.PDF", "a.png", ""):
        assert sniff(png(), name) == "image/png"
        assert sniff(EXE, name) != PDF
    assert not allowed(sniff(png(), "scan.pdf"), {PDF})
    assert not allowed(sniff(EXE, "申請書.pdf"), {PDF})


def test_pdf_only_from_its_first_bytes() -> None:
    assert sniff(b"%PDF-1.4\n%%EOF\n") == PDF
    assert sniff(b"%PDF-x") != PDF  # no version digit
    assert sniff(b"junk\n" + pdf()) != PDF  # something that merely contains a PDF
    assert sniff(b" " + pdf()) != PDF


def test_text_and_csv_in_utf8_and_cp932() -> None:
    rows = "氏名,ふりがな,郵便番号\r\n山田太郎,やまだたろう,141-0001\r\n"
    assert sniff(rows.encode("utf-8"), "list.csv") == CSV
    assert sniff(b"\xef\xbb\xbf" + rows.encode("utf-8"), "LIST.CSV") == CSV
    assert sniff(rows.encode("cp932"), "list.csv") == CSV
    assert sniff(rows.encode("utf-8"), "list.txt") == TEXT
    assert sniff(b"plain\ttext\n\x0cnext page") == TEXT
    # HTML is text too: it can only go where text is allowed, and is never served as HTML
    assert sniff(HTML, "a.pdf") == TEXT
    assert not allowed(sniff(HTML, "a.pdf"), {PDF, "image/*"})


def test_binary_that_nothing_knows_is_unidentified() -> None:
    assert sniff(b"") is None
    assert sniff(b"\x00\x01\x02\x03garbage\x00") is None
    assert sniff(bytes(range(256)) * 4) is None
    assert not allowed(None, {PDF, TEXT, "image/*"})


def test_allowed_types_and_aliases() -> None:
    assert normalise("Image/JPG; charset=binary") == "image/jpeg"
    assert normalise("application/x-pdf") == PDF
    assert allowed("image/jpeg", {"image/jpg"})
    assert allowed("image/png", {"image/*"})
    assert not allowed(PDF, {"image/*"})
    assert allowed(CSV, {TEXT})  # CSV is text
    assert not allowed(TEXT, {CSV})  # not all text is CSV
    assert allowed(CSV, {"text/comma-separated-values"})


@given(st.binary(max_size=200))
def test_a_png_header_never_passes_as_pdf(tail: bytes) -> None:
    data = png()[:16] + tail
    assert sniff(data, "x.pdf") != PDF
    assert not allowed(sniff(data, "x.pdf"), {PDF})


@given(st.binary(min_size=1, max_size=300), st.sampled_from(["a.pdf", "a.csv", "a.txt", ""]))
def test_sniffing_depends_on_the_name_only_between_text_types(data: bytes, name: str) -> None:
    got, bare = sniff(data, name), sniff(data)
    if got in (TEXT, CSV):
        assert bare == TEXT
    else:
        assert got == bare


@given(st.binary(max_size=300))
def test_pdf_exactly_when_the_header_says_so(tail: bytes) -> None:
    assert sniff(b"%PDF-1." + tail) == PDF
    assert sniff(b"%PDF" + tail[:1].replace(b"-", b"") + b"\x00" + tail) != PDF
