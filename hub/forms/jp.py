"""Japanese field rules: postal codes, phone numbers, furigana and 和暦 dates.

Why forgiving input: residents type on phones with Japanese IMEs, so full-width digits, every
kind of hyphen, 〒 and spaces arrive; refusing them would only make them retype. Everything is
NFKC-normalised first and then checked strictly, so stored values have one form. Functions
return ``None`` (or raise ``ValueError`` for dates) instead of guessing.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from datetime import date

# every dash a phone keyboard or IME produces (NFKC maps some of them; not all)
_DASHES = "-‐‑‒–—―−ーｰ－﹣⁃"
_SPACES = " \u3000\t"
_DROP = str.maketrans("", "", _DASHES + _SPACES + "()（）")

PREFECTURES: tuple[str, ...] = (
    "北海道", "青森県", "岩手県", "宮城県", "秋田県", "山形県", "福島県", "茨城県", "栃木県",
    "群馬県", "埼玉県", "千葉県", "東京都", "神奈川県", "新潟県", "富山県", "石川県", "福井県",
    "山梨県", "長野県", "岐阜県", "静岡県", "愛知県", "三重県", "滋賀県", "京都府", "大阪府",
    "兵庫県", "奈良県", "和歌山県", "鳥取県", "島根県", "岡山県", "広島県", "山口県", "徳島県",
    "香川県", "愛媛県", "高知県", "福岡県", "佐賀県", "長崎県", "熊本県", "大分県", "宮崎県",
    "鹿児島県", "沖縄県",
)


def nfkc(text: str) -> str:
    """Full-width letters and digits to ASCII, half-width katakana to full-width, trimmed."""
    return unicodedata.normalize("NFKC", text).strip()


def normalize_postal(text: str) -> str | None:
    """``〒123-4567`` / ``１２３ー４５６７`` → ``1234567``; ``None`` unless exactly 7 digits.

    Idempotent: a normalised code normalises to itself."""
    raw = nfkc(text).removeprefix("〒").translate(_DROP)
    return raw if len(raw) == 7 and raw.isascii() and raw.isdigit() else None


def format_postal(code: str) -> str:
    """``1234567`` → ``123-4567`` (how it is printed and shown)."""
    return f"{code[:3]}-{code[3:]}"


def normalize_phone(text: str) -> str | None:
    """A domestic number as digits only: 10 or 11 digits starting with 0. ``+81 90-…`` and
    ``(03) 1234-5678`` are accepted; anything else is ``None``."""
    raw = nfkc(text).translate(_DROP)
    if raw.startswith("+81"):
        raw = "0" + raw[3:].removeprefix("0")
    if raw.isascii() and raw.isdigit() and raw.startswith("0") and 10 <= len(raw) <= 11:
        return raw
    return None


# --- furigana --------------------------------------------------------------------------------

_KATAKANA = re.compile(r"[\u30A1-\u30FA\u30FC\u30FB ]+")  # ァ–ヺ, ー, ・ and space after NFKC
_HIRAGANA = re.compile(r"[\u3041-\u3096\u30FC ]+")  # ぁ–ゖ and ー


def to_katakana(text: str) -> str:
    return "".join(chr(ord(c) + 0x60) if "\u3041" <= c <= "\u3096" else c for c in text)


def to_hiragana(text: str) -> str:
    return "".join(chr(ord(c) - 0x60) if "\u30A1" <= c <= "\u30F6" else c for c in text)


def normalize_kana(text: str, script: str) -> str | None:
    """Furigana in ``script`` ("katakana" or "hiragana"), or ``None``. The other script is
    converted (an IME gives hiragana first); spaces, full-width too, become one space."""
    raw = " ".join(nfkc(text).split())
    if not raw:
        return None
    if script == "katakana":
        raw = to_katakana(raw)
        return raw if _KATAKANA.fullmatch(raw) else None
    raw = to_hiragana(raw)
    return raw if _HIRAGANA.fullmatch(raw) else None


def is_katakana(text: str) -> bool:
    raw = " ".join(nfkc(text).split())
    return bool(raw) and _KATAKANA.fullmatch(raw) is not None


def is_hiragana(text: str) -> bool:
    raw = " ".join(nfkc(text).split())
    return bool(raw) and _HIRAGANA.fullmatch(raw) is not None


# --- 和暦 ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Era:
    name: str
    letter: str  # the initial used in short forms: R8.12.6
    start: date  # the first day of the era (the day of 改元)


ERAS: tuple[Era, ...] = (
    Era("明治", "M", date(1868, 10, 23)),
    Era("大正", "T", date(1912, 7, 30)),
    Era("昭和", "S", date(1926, 12, 25)),
    Era("平成", "H", date(1989, 1, 8)),
    Era("令和", "R", date(2019, 5, 1)),
)
FIRST_DAY = ERAS[0].start


def era_of(day: date) -> tuple[Era, int]:
    """The era and its year for ``day``; ``ValueError`` before 明治 (1868-10-23)."""
    for era in reversed(ERAS):
        if day >= era.start:
            return era, day.year - era.start.year + 1
    raise ValueError("before Meiji")


def to_wareki(day: date, *, short: bool = False) -> str:
    """``令和8年12月6日`` (year 1 as 元年), or with ``short`` ``R8.12.6``."""
    era, year = era_of(day)
    if short:
        return f"{era.letter}{year}.{day.month}.{day.day}"
    shown = "元" if year == 1 else str(year)
    return f"{era.name}{shown}年{day.month}月{day.day}日"


_BY_NAME = {e.name: e for e in ERAS} | {e.letter: e for e in ERAS}
_LONG = re.compile(
    r"(明治|大正|昭和|平成|令和)\s*(元|[0-9]{1,2})\s*年\s*([0-9]{1,2})\s*月\s*([0-9]{1,2})\s*日?")
_SHORT = re.compile(r"([MTSHR])\s*([0-9]{1,2})[./\-]([0-9]{1,2})[./\-]([0-9]{1,2})")


def parse_wareki(text: str) -> date:
    """``令和元年5月1日``, ``R1.5.1``, ``H31.4.30`` (full-width too) → a date; ``ValueError``
    when the form is unknown or the date is not in that era (``H31.5.1`` was 令和元年)."""
    raw = nfkc(text).upper()
    match = _LONG.fullmatch(raw) or _SHORT.fullmatch(raw)
    if match is None:
        raise ValueError("not a wareki date")
    era = _BY_NAME[match[1]]
    year = 1 if match[2] == "元" else int(match[2])
    day = date(era.start.year + year - 1, int(match[3]), int(match[4]))  # ValueError if no day
    if year < 1 or era_of(day)[0] is not era:
        raise ValueError("not in that era")
    return day


_ISO = re.compile(r"([0-9]{4})[-/.]([0-9]{1,2})[-/.]([0-9]{1,2})")
_KANJI = re.compile(r"([0-9]{4})\s*年\s*([0-9]{1,2})\s*月\s*([0-9]{1,2})\s*日?")


def parse_date(text: str) -> date:
    """A date as residents write it: ``2026-12-06``, ``2026/12/6``, ``2026年12月6日`` or 和暦;
    ``ValueError`` otherwise."""
    raw = nfkc(text)
    match = _ISO.fullmatch(raw) or _KANJI.fullmatch(raw)
    if match is not None:
        return date(int(match[1]), int(match[2]), int(match[3]))
    return parse_wareki(raw)
