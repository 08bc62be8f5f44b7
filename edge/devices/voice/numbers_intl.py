"""Spoken numbers for English, Chinese and Korean, and the per-language dispatcher.

Why not let the engine read "123": engines differ (espeak-ng zh reads digits one way, pyttsx3 on
Windows another), and a site may want digit-by-digit calls. Text we build is the same on all.
Chinese uses numerals (一百二十三) and Korean Sino-Korean hangul (백이십삼), which espeak-ng's
cmn and ko voices read correctly.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Literal

from edge.devices.voice import numbers_ja

NumberStyle = Literal["words", "digits"]
MAX = numbers_ja.MAX

_EN_ONES = ("zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine",
            "ten", "eleven", "twelve", "thirteen", "fourteen", "fifteen", "sixteen",
            "seventeen", "eighteen", "nineteen")
_EN_TENS = ("", "", "twenty", "thirty", "forty", "fifty", "sixty", "seventy", "eighty", "ninety")


def _check(n: int) -> None:
    if not 0 <= n <= MAX:
        raise ValueError(f"number out of range 0..{MAX}: {n}")


def _en_below_1000(n: int) -> str:
    hundreds, rest = divmod(n, 100)
    words: list[str] = []
    if hundreds:
        words.append(f"{_EN_ONES[hundreds]} hundred")
    if rest >= 20:
        tens, ones = divmod(rest, 10)
        words.append(_EN_TENS[tens] + (f"-{_EN_ONES[ones]}" if ones else ""))
    elif rest:
        words.append(_EN_ONES[rest])
    return " ".join(words)


def en_words(n: int) -> str:
    """``123 -> one hundred twenty-three`` (American, no "and")."""
    _check(n)
    if n == 0:
        return "zero"
    thousands, rest = divmod(n, 1000)
    head = f"{_en_below_1000(thousands)} thousand" if thousands else ""
    return " ".join(p for p in (head, _en_below_1000(rest)) if p)


_ZH_DIGITS = "零一二三四五六七八九"
_ZH_UNITS = ("万", "千", "百", "十", "")


def zh_numerals(n: int) -> str:
    """``123 -> 一百二十三``, ``1005 -> 一千零五``, ``10 -> 十``, ``110 -> 一百一十``."""
    _check(n)
    if n == 0:
        return "零"
    digits = [int(d) for d in f"{n:05d}"]
    out: list[str] = []
    pending_zero = False
    for d, unit in zip(digits, _ZH_UNITS, strict=True):
        if d == 0:
            pending_zero = bool(out)
            continue
        if pending_zero:
            out.append("零")
            pending_zero = False
        out.append(_ZH_DIGITS[d] + unit)
    text = "".join(out)
    return text[1:] if text.startswith("一十") else text


_KO_DIGITS = ("영", "일", "이", "삼", "사", "오", "육", "칠", "팔", "구")
_KO_UNITS = ("만", "천", "백", "십", "")


def ko_sino(n: int) -> str:
    """Sino-Korean: ``123 -> 백이십삼``; a leading 1 before 십/백/천/만 is not said."""
    _check(n)
    if n == 0:
        return "영"
    out: list[str] = []
    for d, unit in zip((int(c) for c in f"{n:05d}"), _KO_UNITS, strict=True):
        if d == 0:
            continue
        out.append(("" if d == 1 and unit else _KO_DIGITS[d]) + unit)
    return "".join(out)


def digits(lang: str, n: int) -> str:
    """Digit by digit: ``one two three``, ``いち、にい、さん``, ``一二三``, ``일 이 삼``."""
    if n < 0:
        raise ValueError(f"negative number: {n}")
    if lang == "ja":
        return numbers_ja.digits_reading(n)
    table: Sequence[str] = {"zh": _ZH_DIGITS, "ko": _KO_DIGITS}.get(lang, _EN_ONES[:10])
    sep = "" if lang == "zh" else " "
    return sep.join(table[int(d)] for d in str(n))


def spoken(lang: str, n: int, style: NumberStyle = "words") -> str:
    """The text an engine should speak for number ``n`` in ``lang`` (ja, en, zh, ko).

    Numbers above 99999 are read digit by digit rather than refused: a call must never fail.
    """
    if style == "digits" or n > MAX:
        return digits(lang, n)
    if lang == "ja":
        return numbers_ja.reading(n)
    if lang == "zh":
        return zh_numerals(n)
    if lang == "ko":
        return ko_sino(n)
    return en_words(n)


_DIGIT_RUN = re.compile(r"[0-9０-９]+")
_FULLWIDTH = str.maketrans("０１２３４５６７８９", "0123456789")


def numerals_in_text(lang: str, text: str) -> str:
    """Digits inside a name (``1号窗口``, ``1번 창구``) as the language's number words.

    English and Japanese are left alone here: espeak-ng reads "Counter 1" well, and Japanese
    names go through ``numbers_ja.to_kana`` when the engine needs kana.
    """
    if lang not in ("zh", "ko"):
        return text

    def sub(m: re.Match[str]) -> str:
        value = int(m.group().translate(_FULLWIDTH))
        return spoken(lang, value) if value <= MAX else digits(lang, value)

    return _DIGIT_RUN.sub(sub, text)
