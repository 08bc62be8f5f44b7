"""Every word printed on a ticket, per language, and the ticket's line-by-line layout.

Why one module: the ESC/POS and Star encoders, the preview and the kiosk must agree on the
wording, and translators should find it in one place. Encoders only decide *how* a line is
put on paper (printer font, Kanji mode or raster image), never *what* it says.

English wording is kept to printable ASCII on purpose (a hyphen, not an en dash, in ranges):
ASCII lines print in the printer's own font on every model, which is faster and sharper than
an image. Japanese uses U+FF5E for the range tilde because that is what cp932 (the Kanji-mode
encoding) maps 0x8160 to; U+301C would force the whole line into a raster image.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Literal

from edge.devices.printer.ticket import TicketPrint

LANGS = ("ja", "en", "zh", "ko")
FALLBACK = "ja"  # like the site's own texts (edge.domain.model.Text)

_EN_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_EN_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun",
              "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_JA_DAYS = "月火水木金土日"
_ZH_DAYS = "一二三四五六日"
_KO_DAYS = "월화수목금토일"


@dataclass(frozen=True, slots=True)
class Labels:
    """The fixed wording of one language; ``{n}``, ``{lo}``, ``{hi}`` are filled in."""

    ahead: str
    ahead_one: str
    estimate: str  # a range, lo < hi
    estimate_one: str  # lo == hi
    unknown: str
    guidance: str
    staff_copy: str
    scan: str


LABELS: dict[str, Labels] = {
    "ja": Labels(
        ahead="お待ちの方 {n}人",
        ahead_one="お待ちの方 {n}人",
        estimate="待ち時間の目安 {lo}～{hi}分",
        estimate_one="待ち時間の目安 約{lo}分",
        unknown="待ち時間の目安 不明",
        guidance="番号が表示されるまでお待ちください",
        staff_copy="窓口控え",
        scan="QRコードで待ち状況を確認できます",
    ),
    "en": Labels(
        ahead="{n} people ahead",
        ahead_one="{n} person ahead",
        estimate="Estimated wait {lo}-{hi} min",
        estimate_one="Estimated wait about {lo} min",
        unknown="Estimated wait: unknown",
        guidance="Please wait until your number is shown",
        staff_copy="STAFF COPY",
        scan="Scan for your status",
    ),
    "zh": Labels(
        ahead="前面还有 {n} 人",
        ahead_one="前面还有 {n} 人",
        estimate="预计等候 {lo}-{hi} 分钟",
        estimate_one="预计等候约 {lo} 分钟",
        unknown="预计等候时间：未知",
        guidance="请等候叫号",
        staff_copy="窗口存根",
        scan="扫码查看排队状态",
    ),
    "ko": Labels(
        ahead="대기 인원 {n}명",
        ahead_one="대기 인원 {n}명",
        estimate="예상 대기 시간 {lo}~{hi}분",
        estimate_one="예상 대기 시간 약 {lo}분",
        unknown="예상 대기 시간: 알 수 없음",
        guidance="번호가 표시될 때까지 기다려 주십시오",
        staff_copy="창구 보관용",
        scan="QR 코드로 대기 현황 확인",
    ),
}


def labels(lang: str) -> Labels:
    return LABELS.get(lang) or LABELS[FALLBACK]


def guidance(lang: str) -> str:
    """The default guidance line, for callers building a TicketPrint."""
    return labels(lang).guidance


def ahead(lang: str, n: int) -> str:
    lb = labels(lang)
    return (lb.ahead_one if n == 1 else lb.ahead).format(n=n)


def estimate(lang: str, minutes: tuple[int, int] | None) -> str:
    lb = labels(lang)
    if minutes is None:
        return lb.unknown
    lo, hi = minutes
    return (lb.estimate_one if lo == hi else lb.estimate).format(lo=lo, hi=hi)


def date_time(lang: str, t: datetime) -> str:
    """Issue date and time, written the way each language writes it (no locale lookups)."""
    wd, hm = t.weekday(), f"{t:%H:%M}"
    if lang == "en":
        return f"{_EN_DAYS[wd]} {t.day} {_EN_MONTHS[t.month - 1]} {t.year} {hm}"
    if lang == "zh":
        return f"{t.year}年{t.month}月{t.day}日 星期{_ZH_DAYS[wd]} {hm}"
    if lang == "ko":
        return f"{t.year}년 {t.month}월 {t.day}일 ({_KO_DAYS[wd]}) {hm}"
    return f"{t.year}年{t.month}月{t.day}日({_JA_DAYS[wd]}) {hm}"


# --- layout ----------------------------------------------------------------------------------

LineKind = Literal["text", "number", "qr", "gap"]


@dataclass(frozen=True, slots=True)
class Line:
    """One centred line of a ticket. ``size`` is a multiple of the 24-dot base line height
    (the printer's Font A / Kanji height); encoders shrink it when the text would not fit.
    A "gap" is ``size`` empty lines; a "qr" line holds the payload in ``text``."""

    kind: LineKind
    text: str = ""
    size: int = 1
    bold: bool = False


def _clean(text: str) -> str:
    """Config texts are typed by staff: control characters would be printer commands."""
    return "".join(ch if ch.isprintable() else " " for ch in text).strip()


def visitor_part(t: TicketPrint) -> list[Line]:
    """The part the visitor keeps (Q6): where, which queue, the number, when, the wait, the QR."""
    out = [Line("text", _clean(t.site_name), 1, bold=True),
           Line("text", _clean(t.service_name), 2, bold=True),
           Line("number", str(t.number), 8, bold=True),
           Line("text", date_time(t.lang, t.issued_at)),
           Line("gap", size=1),
           Line("text", ahead(t.lang, t.ahead), bold=True),
           Line("text", estimate(t.lang, t.estimate_min))]
    if t.guidance.strip():
        out.append(Line("text", _clean(t.guidance)))
    if t.qr_payload:
        out += [Line("gap", size=1), Line("qr", t.qr_payload),
                Line("text", labels(t.lang).scan)]
    return [line for line in out if line.kind != "text" or line.text]


def staff_part(t: TicketPrint) -> list[Line]:
    """The part staff keep on two-part tickets (Q7): the number and what it is for."""
    out = [Line("text", labels(t.lang).staff_copy, 1, bold=True),
           Line("number", str(t.number), 4, bold=True),
           Line("text", _clean(f"{t.service_code} {t.service_name}"), 1, bold=True),
           Line("text", date_time(t.lang, t.issued_at))]
    return [line for line in out if line.kind != "text" or line.text]

