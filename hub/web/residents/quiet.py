""""Usually quiet at these times" (issue 15 item 6): from an office's past arrivals, how busy
each opening hour of a weekday usually is, so residents can choose when to come (pure).

Rule: the arrivals of the last weeks (``stats_rollup`` measure ``issued``, per business day and
hour) are averaged per weekday × hour over the days of that weekday in the history (a day with
no ticket at all counts as closed, not as an empty day). An hour the office is open only in
part (08:30 opens hour 8 for 30 minutes) is scaled to a full hour, so a short first hour does
not look quiet only because it is short. Each open hour's rate is compared with the mean rate
of that weekday's open hours: at most ``QUIET_AT`` × the mean is ``quiet``, at least
``BUSY_AT`` × the mean is ``busy``, else ``normal`` — a level is a monotone function of the
rate, and a day as busy in every hour has no quiet hour. A weekday with fewer than
``MIN_DAYS`` days of history, or the office closed that weekday, gets nothing: too little to
say. Hours outside the opening hours are never listed.
"""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterable, Mapping
from typing import Literal

Level = Literal["quiet", "normal", "busy"]
LEVELS: tuple[Level, ...] = ("quiet", "normal", "busy")
MIN_DAYS = 3  # same weekdays of history needed before saying anything
WEEKS = 8  # how far back the history reaches
QUIET_AT = 0.75
BUSY_AT = 1.25

Row = tuple[str, int, int]  # (business day "YYYY-MM-DD", hour 0-23 JST, tickets issued)
Span = tuple[str, str]  # opening hours of a weekday, ("HH:MM", "HH:MM")


def clock_minutes(hhmm: str) -> int:
    """"08:30" -> 510."""
    h, m = hhmm.split(":")
    return int(h) * 60 + int(m)


def open_minutes(span: Span) -> dict[int, int]:
    """Hour -> minutes the office is open in it (hours with none left out)."""
    start, end = clock_minutes(span[0]), clock_minutes(span[1])
    out = {}
    for hour in range(24):
        got = min(end, (hour + 1) * 60) - max(start, hour * 60)
        if got > 0:
            out[hour] = got
    return out


def level(rate: float, mean: float) -> Level:
    """One hour's level against its weekday's mean rate (monotone in ``rate``)."""
    if rate <= QUIET_AT * mean:
        return "quiet"
    if rate >= BUSY_AT * mean:
        return "busy"
    return "normal"


def levels(rows: Iterable[Row], hours: Mapping[int, Span] | None,
           min_days: int = MIN_DAYS) -> dict[int, list[tuple[int, Level]]]:
    """Weekday (0 = Monday) -> [(hour, level)] in hour order, for weekdays the office is open
    (``hours``: the site's opening hours per weekday; None: not configured, so nothing) with
    at least ``min_days`` days of history."""
    if not hours:
        return {}
    days: dict[int, set[str]] = defaultdict(set)
    sums: dict[tuple[int, int], int] = defaultdict(int)
    for day, hour, n in rows:
        if n <= 0:
            continue
        weekday = dt.date.fromisoformat(day).weekday()
        days[weekday].add(day)
        sums[(weekday, hour)] += n
    out: dict[int, list[tuple[int, Level]]] = {}
    for weekday, span in sorted(hours.items()):
        seen = len(days.get(weekday, ()))
        opened = open_minutes(span)
        if seen < min_days or not opened:
            continue
        rates = {h: sums.get((weekday, h), 0) / seen * 60 / m for h, m in opened.items()}
        mean = sum(rates.values()) / len(rates)
        if mean <= 0:
            continue
        out[weekday] = [(h, level(r, mean)) for h, r in sorted(rates.items())]
    return out


def quiet_ranges(hours: Iterable[tuple[int, Level]]) -> list[tuple[int, int]]:
    """Consecutive quiet hours as [start, end) hour ranges: 14, 15 -> (14, 16)."""
    out: list[tuple[int, int]] = []
    for hour, lv in hours:
        if lv != "quiet":
            continue
        if out and out[-1][1] == hour:
            out[-1] = (out[-1][0], hour + 1)
        else:
            out.append((hour, hour + 1))
    return out
