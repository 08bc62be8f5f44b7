"""The ward's calendar: is a site open on a day, and with which hours (issue 13 item 2).

Pure: dates in, answers out (no clock, no I/O). National holidays come from the maintained
``holidays`` package (checked against ``jpholiday`` for 2026-2028 in the tests), computed on the
edge itself so a site decides offline; the ward's own closures (the year-end closure 12/29-1/3 by
default, closed days) and a site's special days travel in the site configuration the hub pushes.

Order of the rules, first match wins: a site's special day (its hours that day, or closed), a
ward closed day, the year-end closure, a national holiday, then the weekly hours. A site without
weekly hours is treated as open every day that no rule closes (the setting is optional).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Literal

import holidays

Reason = Literal["special_closed", "ward_closed", "year_end", "national_holiday", "weekly"]
Hours = tuple[str, str]  # "HH:MM", "HH:MM" in site time, start inclusive, end exclusive
YEAR_END: tuple[tuple[int, int], tuple[int, int]] = ((12, 29), (1, 3))


@dataclass(frozen=True, slots=True)
class Calendar:
    national_holidays: bool = True  # closed on Japan's national holidays
    year_end: tuple[tuple[int, int], tuple[int, int]] | None = YEAR_END  # (month, day) spans
    closed: frozenset[date] = frozenset()  # days the ward closes
    special: Mapping[date, Hours | None] = field(default_factory=dict)  # None: closed that day


@dataclass(frozen=True, slots=True)
class Day:
    open: bool
    hours: Hours | None  # None while open: no hours configured (open all day)
    reason: Reason | None = None  # why closed (stable code for texts)
    holiday: str | None = None  # the national holiday's Japanese name


@lru_cache(maxsize=16)
def _holidays(year: int) -> dict[date, str]:
    # holidays builds its country classes at import time: mypy sees no attribute
    found = holidays.country_holidays("JP", years=year, language="ja")
    return {d: str(name) for d, name in found.items()}


def national_holiday(d: date) -> str | None:
    """The Japanese name of the national holiday on ``d`` (substitute holidays included)."""
    return _holidays(d.year).get(d)


def in_year_end(span: tuple[tuple[int, int], tuple[int, int]], d: date) -> bool:
    """``span`` ((12, 29), (1, 3)) wraps the new year; a non-wrapping span also works."""
    (m1, d1), (m2, d2) = span
    md = (d.month, d.day)
    if (m1, d1) <= (m2, d2):
        return (m1, d1) <= md <= (m2, d2)
    return md >= (m1, d1) or md <= (m2, d2)


def day(cal: Calendar, weekly: Mapping[int, Hours] | None, d: date) -> Day:
    """The site's day ``d``: open or not, its hours, and why it is closed."""
    if d in cal.special:
        hours = cal.special[d]
        return Day(True, hours) if hours is not None else Day(False, None, "special_closed")
    if d in cal.closed:
        return Day(False, None, "ward_closed")
    if cal.year_end is not None and in_year_end(cal.year_end, d):
        return Day(False, None, "year_end")
    name = national_holiday(d) if cal.national_holidays else None
    if name is not None:
        return Day(False, None, "national_holiday", name)
    if weekly is None:
        return Day(True, None)
    hours = weekly.get(d.weekday())
    return Day(True, hours) if hours is not None else Day(False, None, "weekly")


def open_at(cal: Calendar, weekly: Mapping[int, Hours] | None, local: datetime) -> bool:
    """Open at the site-local moment ``local``: an open day, within its hours if it has any."""
    today = day(cal, weekly, local.date())
    if not today.open:
        return False
    if today.hours is None:
        return True
    return today.hours[0] <= local.strftime("%H:%M") < today.hours[1]


_WHY = {  # reason -> (English, Japanese); {name}: the holiday's Japanese name
    "special_closed": ("closed today", "本日は臨時休業です"),
    "ward_closed": ("closed today (a ward closing day)", "本日は区の休業日です"),
    "year_end": ("closed for the New Year holidays", "年末年始のため休業しています"),
    "national_holiday": ("closed today (national holiday: {name})",
                         "本日は祝日（{name}）のため休業です"),
    "weekly": ("not open on this day of the week", "本日は開庁日ではありません"),
}


def closed_text(today: Day) -> tuple[str, str]:
    """Why the office is closed, as ``(English, Japanese)`` sentences for refusals and pages."""
    en, ja = _WHY[today.reason or "special_closed"]
    name = today.holiday or ""
    return "The office is " + en.format(name=name), ja.format(name=name)
