"""Printer codec: golden bytes per profile and language, and every ticket read back through the
virtual printer (decode.py), which was written from the command specs, not from the encoders.

``MADOGUCHI_UPDATE_GOLDEN=1`` rewrites the golden files instead of comparing against them.
"""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from conftest import unavailable
from PIL import Image
from pyzbar import pyzbar

from edge.cli import main
from edge.devices.printer import decode as dec
from edge.devices.printer import raster, render_cli, texts
from edge.devices.printer.codec import (
    PrinterStatus,
    StatusError,
    parse_status,
    render,
    status_request,
)
from edge.devices.printer.escpos import shift_jis
from edge.devices.printer.preview import paint, preview_png
from edge.devices.printer.ticket import TicketPrint
from edge.devices.profiles import PrinterProfile

GOLDEN = Path(__file__).parent / "golden" / "printer"
UPDATE = os.environ.get("MADOGUCHI_UPDATE_GOLDEN") == "1"
PAYLOAD = "https://example.invalid/t/Q2FyZWZ1bGx5Q2hvc2Vu"
TOKYO = ZoneInfo("Asia/Tokyo")
_META = {"kind": "printer", "vendor": "test", "name": "test", "notes": "built by the test"}

KANJI = PrinterProfile(id="t-tm-t88vi", escpos_profile="TM-T88V", japanese="kanji",
                       paper_width_dots=512, dpi=180, **_META)
RASTER58 = PrinterProfile(id="t-pos-5890", escpos_profile="POS-5890", japanese="raster",
                          paper_width_dots=384, cut="none", qr="image", status="none", **_META)
STAR = PrinterProfile(id="t-tsp143", command_set="star-graphic", japanese="raster",
                      paper_width_dots=576, qr="image", status="none", **_META)
MCPRINT = PrinterProfile(id="t-mc-print3", escpos_profile="TM-T20II", japanese="raster",
                         paper_width_dots=576, **_META)
TEST_PROFILES = {p.id: p for p in (KANJI, RASTER58, STAR, MCPRINT)}

NAMES = {
    "ja": ("練馬区民事務所", "転入・転出"),
    "en": ("Nerima Residents Office", "Moving in / out"),
    "zh": ("练马区民事务所", "迁入・迁出"),
    "ko": ("네리마 구민사무소", "전입・전출"),
}


def ticket(lang: str = "ja", two_part: bool = False, number: int = 123) -> TicketPrint:
    site, service = NAMES[lang]
    return TicketPrint(
        number=number, service_code="A", service_name=service, site_name=site,
        issued_at=datetime(2025, 4, 1, 9, 5, tzinfo=TOKYO), ahead=12, estimate_min=(10, 15),
        guidance=texts.guidance(lang), qr_payload=PAYLOAD, lang=lang, two_part=two_part)


def _shipped() -> list[PrinterProfile]:
    from edge.devices.profile_store import load_profiles

    printers = [p for p in load_profiles().values() if isinstance(p, PrinterProfile)]
    assert len(printers) >= 8, "the shipped printer profiles went missing"
    return printers


SHIPPED = _shipped()


def text_lines(elements: list[dec.Element]) -> list[dec.TextLine]:
    return dec.only(elements, dec.TextLine)


def images(elements: list[dec.Element]) -> list[dec.RasterImage]:
    return dec.only(elements, dec.RasterImage)


def cuts(elements: list[dec.Element]) -> list[dec.Cut]:
    return dec.only(elements, dec.Cut)


# --- golden files ------------------------------------------------------------------------------


def _first_difference(a: bytes, b: bytes) -> int:
    return next((i for i, (x, y) in enumerate(zip(a, b, strict=False)) if x != y),
                min(len(a), len(b)))


def check_golden(name: str, data: bytes, shipped: bool = False) -> None:
    path = GOLDEN / f"{name}.bin"
    if UPDATE:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
        return
    if not path.exists():
        message = f"{path} missing: run with MADOGUCHI_UPDATE_GOLDEN=1 and review the preview"
        if shipped:
            unavailable(message)
        pytest.fail(message)
    want = path.read_bytes()
    if data != want:
        at = _first_difference(data, want)
        pytest.fail(f"{name}: bytes differ from the golden file first at offset {at} "
                    f"(got {len(data)} bytes, golden {len(want)}):\n"
                    f"  got    {data[max(0, at - 8):at + 16].hex(' ')}\n"
                    f"  golden {want[max(0, at - 8):at + 16].hex(' ')}\n"
                    "If the change is intended: MADOGUCHI_UPDATE_GOLDEN=1")


GOLDEN_CASES = [(p.id, "ja", False) for p in TEST_PROFILES.values()] + [
    (KANJI.id, "en", False), (KANJI.id, "zh", False), (KANJI.id, "ko", False),
    (KANJI.id, "ja", True), (STAR.id, "ja", True),
]


def _golden_name(profile_id: str, lang: str, two_part: bool) -> str:
    return f"{profile_id}-{lang}{'-two-part' if two_part else ''}"


@pytest.mark.parametrize(("profile_id", "lang", "two_part"), GOLDEN_CASES,
                         ids=[_golden_name(*case) for case in GOLDEN_CASES])
def test_golden(profile_id: str, lang: str, two_part: bool) -> None:
    data = render(TEST_PROFILES[profile_id], ticket(lang, two_part))
    check_golden(_golden_name(profile_id, lang, two_part), data)


@pytest.mark.parametrize("profile", SHIPPED, ids=[p.id for p in SHIPPED])
def test_golden_shipped_profiles(profile: PrinterProfile) -> None:
    data = render(profile, ticket("ja", two_part=True))
    elements = dec.decode(data, profile.paper_width_dots)  # every shipped profile decodes
    assert cuts(elements) or profile.cut == "none"
    check_golden(f"shipped-{profile.id}-ja-two-part", data, shipped=True)


def test_golden_reports_first_differing_offset(tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(f"{__name__}.GOLDEN", tmp_path)
    monkeypatch.setattr(f"{__name__}.UPDATE", False)
    (tmp_path / "x.bin").write_bytes(b"\x1b@abcdef")
    with pytest.raises(pytest.fail.Exception, match="first at offset 4"):
        check_golden("x", b"\x1b@abXdef")


# --- reading tickets back ----------------------------------------------------------------------


def zbar(img: Image.Image) -> list[str]:
    return [s.data.decode() for s in pyzbar.decode(img.convert("L"))]


def test_kanji_profile_prints_japanese_as_kanji_text_and_a_native_qr() -> None:
    data = render(KANJI, ticket("ja"))
    elements = dec.decode(data, KANJI.paper_width_dots)
    lines = {t.text: t for t in text_lines(elements)}
    assert lines["練馬区民事務所"].kanji
    assert lines["転入・転出"].kanji
    assert lines["転入・転出"].width == 2
    assert lines["転入・転出"].bold
    assert lines["2025年4月1日(火) 09:05"].kanji
    assert "お待ちの方 12人" in lines
    assert "待ち時間の目安 10～15分" in lines
    number = lines["123"]
    assert (number.width, number.height, number.kanji, number.align) == (8, 8, False, "center")
    assert not images(elements)  # nothing needed a raster image
    qr = [e for e in elements if isinstance(e, dec.QrCode)]
    assert [q.payload for q in qr] == [PAYLOAD]
    assert qr[0].ec == "M"
    assert zbar(paint([qr[0]], KANJI.paper_width_dots)) == [PAYLOAD]
    assert zbar(preview_png(data, KANJI.paper_width_dots)) == [PAYLOAD]
    assert [c.kind for c in cuts(elements)] == ["partial"]


def test_english_ticket_is_plain_text_on_every_escpos_profile() -> None:
    for profile in (KANJI, RASTER58, MCPRINT):
        elements = dec.decode(render(profile, ticket("en")), profile.paper_width_dots)
        text = [t.text for t in text_lines(elements)]
        assert "Nerima Residents Office" in text
        assert "12 people ahead" in text
        assert "Estimated wait 10-15 min" in text
        assert "Tue 1 Apr 2025 09:05" in text
        assert not any(t.kanji for t in text_lines(elements))


@pytest.mark.parametrize("profile", [RASTER58, MCPRINT], ids=lambda p: p.id)
def test_raster_profile_draws_japanese_as_images_and_keeps_the_number_native(
        profile: PrinterProfile) -> None:
    data = render(profile, ticket("ja"))
    elements = dec.decode(data, profile.paper_width_dots)
    text = text_lines(elements)
    assert all(t.text.isascii() and not t.kanji for t in text)
    assert "123" in [t.text for t in text]
    width = raster.printable_width(profile.paper_width_dots)
    pictures = images(elements)
    assert all(i.image.width == width for i in pictures)
    non_ascii = [line for line in texts.visitor_part(ticket("ja"))
                 if line.kind == "text" and not line.text.isascii()]
    qr_images = 1 if profile.qr == "image" else 0
    assert len(pictures) == len(non_ascii) + qr_images
    if profile.qr == "image":
        assert not [e for e in elements if isinstance(e, dec.QrCode)]
        assert [p for i in pictures for p in zbar(i.image)] == [PAYLOAD]
    assert zbar(preview_png(data, profile.paper_width_dots)) == [PAYLOAD]


def test_korean_on_a_kanji_printer_falls_back_to_raster_for_hangul() -> None:
    elements = dec.decode(render(KANJI, ticket("ko")), KANJI.paper_width_dots)
    text = [t.text for t in text_lines(elements)]
    assert text == ["123"]  # every other line has hangul
    assert len(images(elements)) == 7  # site, service, date, ahead, wait, guidance, scan
    assert [e.payload for e in elements if isinstance(e, dec.QrCode)] == [PAYLOAD]


def test_chinese_on_a_kanji_printer_uses_kanji_where_jis_has_the_characters() -> None:
    lines = text_lines(dec.decode(render(KANJI, ticket("zh", two_part=True))))
    assert "2025年4月1日 星期二 09:05" in [t.text for t in lines]  # all in JIS X 0208
    assert "窗口存根" in [t.text for t in lines]
    assert not any("练" in t.text or "还" in t.text for t in lines)  # simplified: images


def test_two_part_ticket_partial_cut_then_staff_part_with_the_number() -> None:
    profile = KANJI.model_copy(update={"cut": "full"})
    elements = dec.decode(render(profile, ticket("ja", two_part=True)))
    both = cuts(elements)
    assert [c.kind for c in both] == ["partial", "full"]
    first, second = (elements.index(c) for c in both)
    staff = [t.text for t in text_lines(elements[first:second])]
    assert staff[:3] == ["窓口控え", "123", "A 転入・転出"]
    assert staff[3] == "2025年4月1日(火) 09:05"
    visitor = [t.text for t in text_lines(elements[:first])]
    assert "123" in visitor
    assert "窓口控え" not in visitor


def test_two_part_without_cutter_prints_a_tear_line() -> None:
    elements = dec.decode(render(RASTER58, ticket("en", two_part=True)))
    assert not cuts(elements)
    text = [t.text for t in text_lines(elements)]
    tear = text.index("-" * (384 // 12))
    assert text[tear + 1:tear + 3] == ["STAFF COPY", "123"]


def test_star_graphic_is_one_raster_per_part_with_cuts() -> None:
    data = render(STAR, ticket("ja", two_part=True))
    assert data.startswith(b"\x1b*rR\x1b*rA")
    assert data.endswith(b"\x1b\x0c\x04\x1b*rB")
    elements = dec.decode(data, STAR.paper_width_dots)
    assert [type(e).__name__ for e in elements] == ["RasterImage", "Cut", "RasterImage", "Cut"]
    assert [c.kind for c in cuts(elements)] == ["partial", "partial"]
    visitor, staff = (i.image for i in images(elements))
    assert visitor.width == 576
    assert zbar(visitor) == [PAYLOAD]
    want = raster.stack([raster.line_image(line, 576, "ja")
                         for line in texts.staff_part(ticket("ja"))], 576)
    assert staff.tobytes() == want.tobytes()  # rows survive trimming and blank-row skips
    full = STAR.model_copy(update={"cut": "full"})
    assert [c.kind for c in cuts(dec.decode(render(full, ticket("ja"))))] == ["full"]


def test_number_is_as_large_as_the_paper_allows() -> None:
    narrow = KANJI.model_copy(update={"paper_width_dots": 384})
    big = [t for t in text_lines(dec.decode(render(narrow, ticket("en", number=9999))))
           if t.text == "9999"]
    assert (big[0].width, big[0].height) == (8, 8)  # 4 digits x 12 x 8 = 384 dots: fits
    tiny = KANJI.model_copy(update={"paper_width_dots": 256})
    big = [t for t in text_lines(dec.decode(render(tiny, ticket("en", number=9999))))
           if t.text == "9999"]
    assert big[0].width == 5


def test_long_lines_shrink_then_wrap() -> None:
    long_name = "住民異動届（転入・転出・転居）と証明書の発行など"
    lines = text_lines(dec.decode(render(KANJI, replace(ticket("ja"),
                                                            service_name=long_name))))
    parts = [x for x in lines if x.text and x.text in long_name and x.kanji]
    assert "".join(x.text for x in parts) == long_name
    assert all(x.width == 1 for x in parts)
    assert len(parts) == 2


def test_printer_control_characters_in_config_texts_are_not_sent() -> None:
    evil = replace(ticket("en"), site_name="Office\x1bi\x1dV\x00")
    elements = dec.decode(render(KANJI, evil))
    assert [c.kind for c in cuts(elements)] == ["partial"]
    assert "Office i V" in [x.text for x in text_lines(elements)]


def test_shift_jis_covers_jis_x_0208_only() -> None:
    assert shift_jis("練馬区 12") == "練馬区 12".encode("cp932")
    assert shift_jis("대기") is None  # hangul
    assert shift_jis("练") is None  # simplified only
    assert shift_jis("ｱｲｳ") is None  # half-width katakana is a code-table character
    assert shift_jis("髙") is None  # IBM extension kanji: not in every Kanji ROM
    assert shift_jis("①") is None  # NEC row 13


# --- the decoder itself ------------------------------------------------------------------------


def test_decoder_exposes_python_escpos_mangling_japanese() -> None:
    from escpos.printer import Dummy

    p = Dummy(profile="TM-T88V")
    p.text("日本\n")
    assert [t.text for t in text_lines(dec.decode(p.output))] != ["日本"]


@pytest.mark.parametrize(("data", "offset", "what"), [
    (b"\x1b@\x1bZ", 2, "unknown command ESC 'Z'"),
    (b"\x1b@AB\x1d\x99", 4, "unknown command GS 0x99"),
    (b"\x1c&\x1cC\x01\x88", 5, "stream ends"),
    (b"ab\x1dv0\x00\x01\x00\x01\x00\xff", 2, "line buffer holds 'ab'"),
    (b"\x1b*rA\x1b*rE1x\x00", 4, "ASCII digits"),
    (b"\x1b*rAz", 4, "not a raster-mode command"),
    (b"\x00", 0, "control byte"),
])
def test_decoder_rejects_unknown_or_broken_commands_with_offset(
        data: bytes, offset: int, what: str) -> None:
    with pytest.raises(dec.DecodeError, match=what) as info:
        dec.decode(data)
    assert info.value.offset == offset
    assert str(info.value).startswith(f"byte {offset}:")


def test_status_request_is_dle_eot_1_to_4() -> None:
    assert status_request() == bytes.fromhex("10 04 01 10 04 02 10 04 03 10 04 04")
    assert [e for e in dec.decode(status_request())] == [dec.StatusRequest(n) for n in (1, 2, 3, 4)]


# --- status ------------------------------------------------------------------------------------

OK = bytes([0x12, 0x12, 0x12, 0x12])


def _with(n: int, bits: int) -> bytes:
    answer = bytearray(OK)
    answer[n - 1] |= bits
    return bytes(answer)


@pytest.mark.parametrize(("answer", "health"), [
    (OK, ("ok", None)),
    (_with(4, 0x0C), ("degraded", "paper_near_end")),
    (_with(4, 0x60), ("error", "paper_out")),
    (_with(2, 0x20), ("error", "paper_out")),
    (_with(2, 0x04), ("error", "cover_open")),
    (_with(2, 0x40), ("error", "printer_error")),
    (_with(3, 0x08), ("error", "printer_error")),  # autocutter
    (_with(3, 0x20), ("error", "printer_error")),  # unrecoverable
    (_with(3, 0x40), ("error", "printer_error")),  # auto-recoverable
    (_with(1, 0x08), ("error", "printer_error")),  # offline, no cause given
    (bytes([0x1A, 0x16, 0x12, 0x7E]), ("error", "cover_open")),  # cover open reads as paper end
], ids=["ok", "near-end", "paper-end-sensor", "paper-end-stop", "cover", "error", "cutter",
        "unrecoverable", "auto-recoverable", "offline", "cover-first"])
def test_parse_status_each_fault(answer: bytes, health: tuple[str, str | None]) -> None:
    assert parse_status(answer).health() == health


def test_parse_status_feed_button_is_not_a_fault() -> None:
    answer = bytes([0x1A, 0x1A, 0x12, 0x12])  # offline because paper is being fed by hand
    assert parse_status(answer) == PrinterStatus(True, False, False, False, False)


@pytest.mark.parametrize("answer", [b"", b"\x12\x12\x12", OK + OK, b"\x00\x00\x00\x00",
                                    b"\xff\xff\xff\xff", bytes([0x12, 0x12, 0x02, 0x12])])
def test_parse_status_refuses_garbage(answer: bytes) -> None:
    with pytest.raises(StatusError, match="status"):
        parse_status(answer)
    assert issubclass(StatusError, ValueError)  # what the printer service catches


# --- fonts, layout helpers -----------------------------------------------------------------


def test_missing_cjk_font_is_a_clear_error(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(raster.FONT_ENV, "/nonexistent/font.ttc")
    raster.font_file.cache_clear()
    raster.font.cache_clear()
    try:
        with pytest.raises(raster.FontMissing, match="no such font file"):
            render(RASTER58, ticket("ja"))
        render(KANJI, ticket("ja"))  # Kanji mode needs no font
    finally:
        monkeypatch.delenv(raster.FONT_ENV)
        raster.font_file.cache_clear()
        raster.font.cache_clear()


def test_wrap_balances_cjk_and_breaks_latin_at_spaces() -> None:
    assert raster.wrap("あいうえおかきくけ", lambda s: len(s) <= 8) == ["あいうえお", "かきくけ"]
    assert raster.wrap("Please wait here", lambda s: len(s) <= 12) == ["Please wait", "here"]
    assert raster.fit("abc", [3, 2, 1], lambda n, s: len(s) * n <= 6) == (2, ["abc"])


# --- the CLI -------------------------------------------------------------------------------

SITE = """
[site]
id = "test-site"
name = { ja = "練馬区民事務所", en = "Nerima Residents Office" }
[[services]]
code = "A"
name = { ja = "転入・転出", en = "Moving in / out" }
range = [1, 299]
ticket = "two-part"
handling_minutes = 6
[[services]]
code = "B"
name = { ja = "証明書", en = "Certificates" }
range = [1001, 1999]
[[counters]]
id = "1"
name = { ja = "1番窓口", en = "Counter 1" }
services = ["A", "B"]
"""


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.setattr(render_cli, "_profiles", lambda: dict(TEST_PROFILES))
    path = tmp_path / "site.toml"
    path.write_text(SITE, encoding="utf-8")
    return path


def test_cli_writes_bin_and_png(site: Path, tmp_path: Path,
                                capsys: pytest.CaptureFixture[str]) -> None:
    out, png = tmp_path / "t.bin", tmp_path / "t.png"
    status = main(["ticket", "render", "--profile", KANJI.id, "--service", "A", "--number", "7",
                   "--ahead", "3", "--out", str(out), "--png", str(png), "--config", str(site)])
    assert status == 0
    printed = capsys.readouterr().out
    data = out.read_bytes()
    assert f"{len(data)} bytes" in printed
    assert "two-part" in printed
    assert "px preview" in printed
    elements = dec.decode(data)
    text = [t.text for t in text_lines(elements)]
    assert "7" in text
    assert "転入・転出" in text
    assert "待ち時間の目安 14～22分" in text
    assert len(cuts(elements)) == 2
    qr = [e.payload for e in elements if isinstance(e, dec.QrCode)]
    assert qr[0].startswith(render_cli.SAMPLE_STATUS_URL)
    assert zbar(Image.open(png)) == qr


@pytest.mark.parametrize(("args", "message"), [
    (["--profile", "no-such", "--service", "A", "--number", "1"],
     "unknown printer profile 'no-such'; known: t-mc-print3, t-pos-5890"),
    (["--profile", KANJI.id, "--service", "Z", "--number", "1"], "known: A, B"),
    (["--profile", KANJI.id, "--service", "B", "--number", "5"], "outside service B's range"),
])
def test_cli_refuses_unknown_profile_or_service(site: Path, tmp_path: Path, args: list[str],
                                                message: str,
                                                capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "t.bin"
    assert main(["ticket", "render", *args, "--out", str(out), "--config", str(site)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert "Traceback" not in err
    assert not out.exists()
