"""Slots in bulk by pattern (R1): "weekdays 9:00-16:30 every 30 minutes, 2 per slot, except
holidays". Pure: returns the rows ``booking.add_slots`` inserts.

Days closed by the ward's calendar get no slots; Saturday slots only at the main office (seed
002 §5.5.3(2): Saturday reservations are taken at 練馬区民事務所 only).
"""

from __future__ import annotations

import datetime as _dt
from collections.abc import Iterable
from dataclasses import dataclass

from edge.domain.calendar import Calendar, day
from hub.reservations.window import TOKYO


@dataclass(frozen=True)
class Pattern:
    office: str
    site: str
    service: str
    counter_group: str
    first_day: _dt.date
    last_day: _dt.date
    weekdays: frozenset[int]  # 0 = Monday
    start: _dt.time
    end: _dt.time  # the last slot starts before this
    every_min: int
    capacity: int
    published_at: _dt.datetime


def days(p: Pattern, cal: Calendar, main_office: str) -> Iterable[_dt.date]:
    d = p.first_day
    while d <= p.last_day:
        saturday_ok = d.weekday() != 5 or p.office == main_office
        # no weekly hours here: only a holiday, the year end or a ward day closes ``d``
        if d.weekday() in p.weekdays and saturday_ok and day(cal, None, d).open:
            yield d
        d += _dt.timedelta(days=1)


def rows(p: Pattern, cal: Calendar, main_office: str) -> list[dict[str, object]]:
    if p.every_min < 5 or p.capacity < 0 or p.start >= p.end:
        raise ValueError("every_min >= 5, capacity >= 0 and start < end")
    out: list[dict[str, object]] = []
    step = _dt.timedelta(minutes=p.every_min)
    for d in days(p, cal, main_office):
        at = _dt.datetime.combine(d, p.start, TOKYO)
        stop = _dt.datetime.combine(d, p.end, TOKYO)
        while at < stop:
            out.append({"office": p.office, "site": p.site, "service": p.service,
                        "counter_group": p.counter_group, "starts_at": at,
                        "ends_at": at + step, "capacity": p.capacity, "booked": 0,
                        "published_at": p.published_at, "closed": False})
            at += step
    return out
