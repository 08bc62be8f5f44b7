"""Report periods (pure): a day, an ISO week, a month, a fiscal year (April 1 - March 31) or any
range of business days, the same period last year, and the labels staff read.

Why its own module: the ward counts by 年度 (April-March), which no calendar library knows, and
"the same period last year" differs per kind (a week is the same ISO week number, a fiscal year
the previous one, a day the same date, 29 February the 28th). Every date here is a business day
(``stats_rollup.day``, Asia/Tokyo), so no time zone arithmetic happens here.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from typing import Literal

Kind = Literal["day", "week", "month", "fy", "range"]
KINDS: tuple[Kind, ...] = ("day", "week", "month", "fy", "range")
FY_START_MONTH = 4
MAX_DAYS = 3 * 366 + 1  # a range covers at most about three fiscal years
MIN_YEAR, MAX_YEAR = 2000, 2100
WEEKDAYS_JA = ("月", "火", "水", "木", "金", "土", "日")
WEEKDAYS_EN = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")


class PeriodError(ValueError):
    """A period the form cannot be read as: ``field`` is the form field at fault, ``code`` the
    message key (``i18n`` ``errors.<code>``)."""

    def __init__(self, field: str, code: str) -> None:
        super().__init__(f"{field}: {code}")
        self.field, self.code = field, code


@dataclass(frozen=True)
class Period:
    """Business days ``start``..``end``, both included; ``kind`` says how it was chosen (and so
    what "last year" means)."""

    kind: Kind
    start: date
    end: date

    @property
    def days(self) -> int:
        return (self.end - self.start).days + 1

    def each_day(self) -> Iterator[date]:
        for i in range(self.days):
            yield self.start + timedelta(days=i)

    def value(self) -> str:
        """The form value that chooses this period again (``parse(kind, value)``)."""
        if self.kind == "day":
            return self.start.isoformat()
        if self.kind == "week":
            return week_key(self.start)
        if self.kind == "month":
            return self.start.strftime("%Y-%m")
        if self.kind == "fy":
            return str(self.start.year)
        return f"{self.start.isoformat()}/{self.end.isoformat()}"


def fiscal_year(d: date) -> int:
    """The 年度 a day belongs to: 2027-03-31 is in 2026年度, 2027-04-01 in 2027年度."""
    return d.year if d.month >= FY_START_MONTH else d.year - 1


def fy_label(fy: int, lang: str) -> str:
    return f"{fy}年度" if lang == "ja" else f"FY{fy}"


def fy_period(fy: int) -> Period:
    return Period("fy", date(fy, FY_START_MONTH, 1), date(fy + 1, FY_START_MONTH, 1)
                  - timedelta(days=1))


def week_key(d: date) -> str:
    """ISO week ``2026-W14`` (the value of an HTML ``<input type=week>``)."""
    year, week, _ = d.isocalendar()
    return f"{year}-W{week:02d}"


def month_key(d: date) -> str:
    return d.strftime("%Y-%m")


def week_period(year: int, week: int) -> Period:
    monday = date.fromisocalendar(year, week, 1)
    return Period("week", monday, monday + timedelta(days=6))


def month_period(year: int, month: int) -> Period:
    first = date(year, month, 1)
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    return Period("month", first, nxt - timedelta(days=1))


def _date(raw: str, field: str) -> date:
    try:
        d = date.fromisoformat(raw.strip())
    except ValueError:
        raise PeriodError(field, "bad_date") from None
    if not MIN_YEAR <= d.year <= MAX_YEAR:
        raise PeriodError(field, "out_of_range")
    return d


def _year(raw: str, field: str) -> int:
    text = raw.strip().removesuffix("年度").removeprefix("FY")
    if not text.isascii() or not text.isdigit():
        raise PeriodError(field, "bad_year")
    year = int(text)
    if not MIN_YEAR <= year <= MAX_YEAR:
        raise PeriodError(field, "out_of_range")
    return year


def parse(kind: str, value: str = "", start: str = "", end: str = "") -> Period:
    """A period from the form: ``value`` for day (YYYY-MM-DD), week (YYYY-Www, or any day of
    it), month (YYYY-MM) and fy (the year it starts in: 2026 = 2026-04-01..2027-03-31);
    ``start``/``end`` (YYYY-MM-DD, both included) for a range. Raises ``PeriodError``."""
    if kind == "day":
        d = _date(value, "value")
        return Period("day", d, d)
    if kind == "week":
        text = value.strip()
        if "-W" in text.upper():
            y, _, w = text.upper().partition("-W")
            year = _year(y, "value")
            if not w.isascii() or not w.isdigit():
                raise PeriodError("value", "bad_week")
            try:
                return week_period(year, int(w))
            except ValueError:
                raise PeriodError("value", "bad_week") from None
        d = _date(text, "value")
        monday = d - timedelta(days=d.weekday())
        return Period("week", monday, monday + timedelta(days=6))
    if kind == "month":
        y, _, m = value.strip().partition("-")
        year = _year(y, "value")
        if not m.isascii() or not m.isdigit() or not 1 <= int(m) <= 12:
            raise PeriodError("value", "bad_month")
        return month_period(year, int(m))
    if kind == "fy":
        return fy_period(_year(value, "value"))
    if kind == "range":
        a, b = _date(start, "start"), _date(end, "end")
        if b < a:
            raise PeriodError("end", "end_before_start")
        if (b - a).days + 1 > MAX_DAYS:
            raise PeriodError("end", "too_long")
        return Period("range", a, b)
    raise PeriodError("kind", "bad_kind")


def year_before(d: date) -> date:
    """The same date a year earlier; 29 February becomes the 28th."""
    try:
        return d.replace(year=d.year - 1)
    except ValueError:
        return d.replace(year=d.year - 1, day=28)


def last_year(p: Period) -> Period:
    """The same period a year earlier: the same ISO week number (week 53 of a year that has
    none: week 52), month, fiscal year, date or range of dates."""
    if p.kind == "week":
        year, week, _ = p.start.isocalendar()
        weeks = date(year - 1, 12, 28).isocalendar()[1]  # 28 Dec is always in the last week
        return week_period(year - 1, min(week, weeks))
    if p.kind == "month":
        return month_period(p.start.year - 1, p.start.month)
    if p.kind == "fy":
        return fy_period(fiscal_year(p.start) - 1)
    return Period(p.kind, year_before(p.start), year_before(p.end))


def label(p: Period, lang: str) -> str:
    """How the report's title names the period."""
    if p.kind == "fy":
        return fy_label(fiscal_year(p.start), lang)
    if p.kind == "month":
        return f"{p.start.year}年{p.start.month}月" if lang == "ja" else \
            p.start.strftime("%B %Y")
    if p.kind == "day":
        return day_label(p.start, lang)
    return f"{day_label(p.start, lang)} – {day_label(p.end, lang)}"


def day_label(d: date, lang: str) -> str:
    if lang == "ja":
        return f"{d.year}年{d.month}月{d.day}日（{WEEKDAYS_JA[d.weekday()]}）"
    return f"{WEEKDAYS_EN[d.weekday()]} {d.isoformat()}"


def split(p: Period, months: int = 1) -> Iterator[Period]:
    """``p`` in pieces of ``months`` calendar months (clipped to ``p``), in order: what the
    CSV export reads one at a time, so a long range never sits in memory at once."""
    start = p.start
    while start <= p.end:
        y, m = start.year, start.month - 1 + months
        nxt = date(y + m // 12, m % 12 + 1, 1)
        end = min(nxt - timedelta(days=1), p.end)
        yield Period(p.kind, start, end)
        start = end + timedelta(days=1)


def split_weeks(p: Period, weeks: int = 8) -> Iterator[Period]:
    """``p`` in pieces that end on a Sunday (so no ISO week is cut in two)."""
    start = p.start
    while start <= p.end:
        end = start + timedelta(days=6 - start.weekday() + 7 * (weeks - 1))
        end = min(end, p.end)
        yield Period(p.kind, start, end)
        start = end + timedelta(days=1)
