"""The booking window (R4): when a slot on date S may be booked. Pure: dates, calendar and the
publication time are passed in.

The ward's rule (seed 002 §5.5.3(2)): from 45 days before S, until 3 business days before S
(5 for Saturday slots). Read as:

- **opens** at 00:00 (Tokyo) of S - 45 calendar days, or at the slots' publication time if
  that is later. The seed's example: opening on 2026-11-17 makes 2027-01-01 the first date
  with bookable slots (2027-01-01 - 45 days = 2026-11-17).
- **closes** at the cut-off time (default 24:00, i.e. the end of the day) of the N-th business
  day before S, counting back from the day before S (N = 3, or 5 for a Saturday slot). A
  business day is Monday to Friday and not closed by the ward's calendar (national holidays,
  the year-end closure 12/29–1/3, the ward's closed days): ``edge.domain.calendar.day``, the
  same calendar the sites use. ``last_bookable`` is one second before the cut-off.

The numbers and the cut-off are settings (``Rules``); Saturday slots are those on a Saturday.
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from edge.domain.calendar import Calendar, day

TOKYO = ZoneInfo("Asia/Tokyo")


@dataclass(frozen=True, slots=True)
class Rules:
    days_before: int = 45  # calendar days
    business_days: int = 3  # the last bookable business day before the slot's date
    saturday_business_days: int = 5
    cutoff: str = "24:00"  # HH:MM on that day; bookings before it


@dataclass(frozen=True, slots=True)
class Window:
    first: _dt.datetime  # aware, Tokyo
    last: _dt.datetime  # aware, Tokyo: the last second a booking is taken

    def contains(self, at: _dt.datetime) -> bool:
        return self.first <= at <= self.last

    def view(self) -> dict[str, str]:
        return {"first_bookable": self.first.isoformat(), "last_bookable": self.last.isoformat()}


def is_business_day(cal: Calendar, d: _dt.date) -> bool:
    return d.weekday() < 5 and day(cal, None, d).open


def nth_business_day_before(cal: Calendar, d: _dt.date, n: int) -> _dt.date:
    """The ``n``-th business day strictly before ``d`` (n >= 1)."""
    if n < 1:
        raise ValueError("n must be at least 1")
    found, cur = 0, d
    for _ in range(n * 7 + 60):  # bounded: no calendar closes more than weeks in a row
        cur -= _dt.timedelta(days=1)
        if is_business_day(cal, cur):
            found += 1
            if found == n:
                return cur
    raise ValueError(f"no {n} business days found before {d}")


def _at(d: _dt.date, hhmm: str) -> _dt.datetime:
    hours, minutes = (int(x) for x in hhmm.split(":"))
    base = _dt.datetime(d.year, d.month, d.day, tzinfo=TOKYO)
    return base + _dt.timedelta(hours=hours, minutes=minutes)


def window(slot_date: _dt.date, cal: Calendar, rules: Rules = Rules(),
           published_at: _dt.datetime | None = None) -> Window:
    """The booking window of a slot on ``slot_date``. ``published_at``: when its slots were
    published (aware); bookings never open before it. The window may be empty (``first`` after
    ``last``): e.g. slots published too late for their date."""
    first = _at(slot_date - _dt.timedelta(days=rules.days_before), "00:00")
    if published_at is not None and published_at.astimezone(TOKYO) > first:
        first = published_at.astimezone(TOKYO)
    n = rules.saturday_business_days if slot_date.weekday() == 5 else rules.business_days
    cutoff = _at(nth_business_day_before(cal, slot_date, n), rules.cutoff)
    return Window(first, cutoff - _dt.timedelta(seconds=1))
