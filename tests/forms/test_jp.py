"""Japanese field rules: postal codes, phone numbers, furigana, 和暦 (hub/forms/jp.py)."""

from __future__ import annotations

import unicodedata
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.forms import jp

FULL = str.maketrans("0123456789", "０１２３４５６７８９")
DASHES = st.sampled_from(["-", "ー", "－", "‐", "−", "―", "ｰ", ""])
digits = st.text(alphabet="0123456789", min_size=7, max_size=7)
days = st.dates(min_value=date(1868, 10, 23), max_value=date(2100, 12, 31))


@given(digits, DASHES, st.booleans(), st.booleans(), st.sampled_from(["", " ", "\u3000"]))
def test_postal_code_written_any_way_is_seven_digits(code: str, dash: str, full: bool,
                                                     mark: bool, pad: str) -> None:
    text = ("〒" if mark else "") + code[:3] + dash + code[3:]
    text = pad + (text.translate(FULL) if full else text) + pad
    assert jp.normalize_postal(text) == code
    assert jp.format_postal(code) == f"{code[:3]}-{code[3:]}"


@given(st.text(max_size=12))
def test_postal_normalisation_is_idempotent_and_strict(text: str) -> None:
    once = jp.normalize_postal(text)
    if once is not None:
        assert len(once) == 7
        assert once.isascii()
        assert once.isdigit()
        assert jp.normalize_postal(once) == once


@pytest.mark.parametrize("bad", ["123-456", "12345678", "abc-defg", "", "〒", "１２３４５６"])
def test_postal_code_refused(bad: str) -> None:
    assert jp.normalize_postal(bad) is None


@pytest.mark.parametrize(("text", "want"), [
    ("03-1234-5678", "0312345678"),
    ("090-1234-5678", "09012345678"),
    ("０９０ー１２３４ー５６７８", "09012345678"),
    ("(03) 1234 5678", "0312345678"),
    ("+81 90-1234-5678", "09012345678"),
    ("+81 (0)3 1234 5678", "0312345678"),
    ("0120-123-456", "0120123456"),
])
def test_phone_formats(text: str, want: str) -> None:
    assert jp.normalize_phone(text) == want


@pytest.mark.parametrize("bad", ["1234567890", "03-1234-567", "090-1234-56789", "tel", "",
                                 "03-1234-567a", "+1 212 555 0100"])
def test_phone_refused(bad: str) -> None:
    assert jp.normalize_phone(bad) is None


@given(st.text(alphabet="0123456789", min_size=9, max_size=10), DASHES)
def test_phone_digits_after_zero(rest: str, dash: str) -> None:
    number = "0" + rest
    assert jp.normalize_phone(number[:3] + dash + number[3:]) == number


def test_furigana() -> None:
    assert jp.normalize_kana("ヤマダ　タロウ", "katakana") == "ヤマダ タロウ"
    assert jp.normalize_kana("やまだ", "katakana") == "ヤマダ"  # IME output converted
    assert jp.normalize_kana("ﾔﾏﾀﾞ", "katakana") == "ヤマダ"  # half-width
    assert jp.normalize_kana("コーヒー", "katakana") == "コーヒー"
    assert jp.normalize_kana("ヤマダ", "hiragana") == "やまだ"
    assert jp.normalize_kana("らーめん", "hiragana") == "らーめん"
    assert jp.normalize_kana("山田", "katakana") is None
    assert jp.normalize_kana("yamada", "hiragana") is None
    assert jp.normalize_kana("　", "katakana") is None
    assert jp.is_katakana("ヤマダ タロウ")
    assert not jp.is_katakana("やまだ")
    assert jp.is_hiragana("やまだ　たろう")
    assert not jp.is_hiragana("ヤマダ")


@given(st.text(alphabet=st.characters(min_codepoint=0x30A1, max_codepoint=0x30F6), min_size=1))
def test_katakana_hiragana_round_trip(kata: str) -> None:
    hira = jp.normalize_kana(kata, "hiragana")
    assert hira is not None
    assert jp.is_hiragana(hira)
    assert jp.normalize_kana(hira, "katakana") == unicodedata.normalize("NFKC", kata)


@pytest.mark.parametrize(("day", "want"), [
    (date(2026, 12, 6), "令和8年12月6日"),
    (date(2019, 5, 1), "令和元年5月1日"),
    (date(2019, 4, 30), "平成31年4月30日"),
    (date(1989, 1, 8), "平成元年1月8日"),
    (date(1989, 1, 7), "昭和64年1月7日"),
    (date(1926, 12, 25), "昭和元年12月25日"),
    (date(1926, 12, 24), "大正15年12月24日"),
    (date(1912, 7, 30), "大正元年7月30日"),
    (date(1912, 7, 29), "明治45年7月29日"),
    (date(1868, 10, 23), "明治元年10月23日"),
])
def test_wareki_boundaries(day: date, want: str) -> None:
    assert jp.to_wareki(day) == want
    assert jp.parse_wareki(want) == day


def test_before_meiji_refused() -> None:
    with pytest.raises(ValueError, match="before Meiji"):
        jp.to_wareki(date(1868, 10, 22))
    with pytest.raises(ValueError, match="before Meiji"):
        jp.parse_wareki("明治元年1月1日")  # 改元 was on 10月23日


@pytest.mark.parametrize(("text", "want"), [
    ("令和元年5月1日", date(2019, 5, 1)),
    ("R1.5.1", date(2019, 5, 1)),
    ("r01/05/01", date(2019, 5, 1)),
    ("Ｈ３１．４．３０", date(2019, 4, 30)),
    ("H31.4.30", date(2019, 4, 30)),
    ("㍻31年4月30日", date(2019, 4, 30)),
    ("令和 8 年 12 月 6 日", date(2026, 12, 6)),
    ("S64.1.7", date(1989, 1, 7)),
])
def test_parse_wareki(text: str, want: date) -> None:
    assert jp.parse_wareki(text) == want


@pytest.mark.parametrize("bad", ["H31.5.1", "R1.4.30", "S64.1.8", "平成32年1月1日", "R8.2.30",
                                 "R0.5.1", "令和8年", "X1.1.1", "2026-12-06"])
def test_parse_wareki_refuses_dates_outside_their_era(bad: str) -> None:
    with pytest.raises(ValueError, match=r"wareki|era|day|month|year"):
        jp.parse_wareki(bad)


@given(days, st.booleans())
def test_wareki_round_trip_every_day(day: date, short: bool) -> None:
    text = jp.to_wareki(day, short=short)
    assert jp.parse_wareki(text) == day
    assert jp.parse_date(text) == day


def test_wareki_round_trip_exhaustive() -> None:
    """Every day from 明治元年10月23日 to 2100: cheap enough to check them all, not a sample."""
    day, last = jp.FIRST_DAY, date(2100, 12, 31)
    count = 0
    while day <= last:
        assert jp.parse_wareki(jp.to_wareki(day)) == day, day
        day += timedelta(days=1)
        count += 1
    assert count == (last - jp.FIRST_DAY).days + 1


@given(days)
def test_parse_date_seireki_forms(day: date) -> None:
    assert jp.parse_date(day.isoformat()) == day
    assert jp.parse_date(f"{day.year}/{day.month}/{day.day}") == day
    assert jp.parse_date(f"{day.year}年{day.month}月{day.day}日".translate(FULL)) == day
