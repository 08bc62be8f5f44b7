"""The "usually quiet" rule (hub/web/residents/quiet.py), pure: levels follow the hourly rates
monotonically, hours outside the opening hours are never listed, a weekday with too little
history says nothing, and a part hour (08:30 opening) is scaled to a full hour."""

from __future__ import annotations

import datetime as dt
import itertools

from hypothesis import given
from hypothesis import strategies as st

from hub.web.residents.quiet import (
    LEVELS,
    MIN_DAYS,
    Row,
    Span,
    clock_minutes,
    levels,
    open_minutes,
    quiet_ranges,
)

MONDAY = dt.date(2026, 11, 2)
WEEKDAY_HOURS: dict[int, Span] = {d: ("08:30", "19:00") for d in range(5)} | {5: ("09:00", "17:00")}


def day_of(weeks_back: int, weekday: int) -> str:
    return (MONDAY - dt.timedelta(weeks=weeks_back) + dt.timedelta(days=weekday)).isoformat()


rows_st = st.lists(st.tuples(st.integers(0, 7), st.integers(0, 6), st.integers(0, 23),
                             st.integers(0, 40)), max_size=300)
spans_st = st.dictionaries(
    st.integers(0, 6),
    st.tuples(st.integers(0, 23 * 60), st.integers(1, 12 * 60)).map(
        lambda p: (f"{p[0] // 60:02d}:{p[0] % 60:02d}",
                   f"{min(24 * 60, p[0] + p[1]) // 60:02d}:{min(24 * 60, p[0] + p[1]) % 60:02d}")),
    max_size=7)


def to_rows(raw: list[tuple[int, int, int, int]]) -> list[Row]:
    return [(day_of(w, d), h, n) for w, d, h, n in raw]


@given(rows_st, spans_st, st.integers(1, 5))
def test_levels_properties(raw: list[tuple[int, int, int, int]], spans: dict[int, Span],
                           min_days: int) -> None:
    rows = to_rows(raw)
    got = levels(rows, spans, min_days)
    for weekday, hours in got.items():
        assert weekday in spans
        opened = open_minutes(spans[weekday])
        # only open hours, each once, in order, all of them
        assert [h for h, _ in hours] == sorted(opened)
        # enough same weekdays with tickets
        days = {d for d, _h, n in rows if n > 0 and dt.date.fromisoformat(d).weekday() == weekday}
        assert len(days) >= min_days
        # monotone: a higher arrival rate (per open minute) never has a lower level
        rate = {h: sum(n for d, hh, n in rows if hh == h and d in days) / opened[h]
                for h in opened}
        for h1, l1 in hours:
            for h2, l2 in hours:
                if rate[h1] < rate[h2]:
                    assert LEVELS.index(l1) <= LEVELS.index(l2), (rate, hours)
                if rate[h1] == rate[h2]:
                    assert l1 == l2
    for weekday in set(spans) - set(got):  # said nothing: too little history or no arrivals
        days = {d for d, _h, n in rows if n > 0 and dt.date.fromisoformat(d).weekday() == weekday}
        opened = open_minutes(spans[weekday])
        assert len(days) < min_days or not opened or not any(
            n for d, h, n in rows if d in days and h in opened)
    assert levels(rows, None, min_days) == {}


@given(st.lists(st.sampled_from(LEVELS), max_size=24))
def test_quiet_ranges_cover_exactly_the_quiet_hours(lvs: list[str]) -> None:
    hours = [(8 + i, lv) for i, lv in enumerate(lvs)]
    ranges = quiet_ranges(hours)  # type: ignore[arg-type]
    covered = [h for a, b in ranges for h in range(a, b)]
    assert covered == [h for h, lv in hours if lv == "quiet"]
    assert all(b1 < a2 for (_a1, b1), (a2, _b2) in itertools.pairwise(ranges))


def _week_pattern(weeks: int, weekday: int) -> list[Row]:
    """A usual day: busy late morning, quiet mid-afternoon (per full hour)."""
    per_hour = {8: 5, 9: 10, 10: 20, 11: 20, 12: 10, 13: 10, 14: 2, 15: 2, 16: 10, 17: 10,
                18: 10}
    return [(day_of(w, weekday), h, n) for w in range(weeks) for h, n in per_hour.items()]


def test_a_usual_monday_and_too_little_history() -> None:
    got = levels(_week_pattern(8, 0) + _week_pattern(MIN_DAYS - 1, 1), WEEKDAY_HOURS)
    assert set(got) == {0}  # Tuesday: 2 Tuesdays only; Wednesday on: no history
    monday = dict(got[0])
    assert monday[8] == "normal"  # half an hour open, half the tickets: not quiet
    assert (monday[10], monday[11]) == ("busy", "busy")
    assert quiet_ranges(got[0]) == [(14, 16)]
    assert 7 not in monday
    assert 19 not in monday
    # tickets issued before opening (7:50) does not make hour 7 an open hour
    assert 7 not in dict(levels([*_week_pattern(8, 0), (day_of(0, 0), 7, 30)],
                                WEEKDAY_HOURS)[0])
    # every hour alike: no quiet hour
    flat = [(day_of(w, 0), h, 6) for w in range(4) for h in range(9, 17)]
    assert {lv for _h, lv in levels(flat, {0: ("09:00", "17:00")})[0]} == {"normal"}


def test_open_minutes() -> None:
    assert open_minutes(("08:30", "10:00")) == {8: 30, 9: 60}
    assert open_minutes(("09:00", "09:00")) == {}
    assert open_minutes(("00:00", "24:00")) == {h: 60 for h in range(24)}
    assert clock_minutes("17:45") == 17 * 60 + 45


def test_section_of_an_office() -> None:
    """What the page gets: times clipped to the opening hours, the quiet stretches, the
    weekdays to offer; a weekday the office is closed says only that other days exist."""
    from hub.web.residents.i18n import TEXTS
    from hub.web.residents.quietcache import QuietHours, quiet_sentence

    quiet = QuietHours(None, None)  # type: ignore[arg-type]  # no store: section() is pure
    quiet.spans = {"x": dict(WEEKDAY_HOURS)}
    quiet.by_site = {"x": levels(_week_pattern(8, 0) + _week_pattern(2, 1), WEEKDAY_HOURS)}
    monday = quiet.section("x", 0)
    assert monday is not None
    assert (monday.open, monday.weekdays, monday.ranges) == (True, (0,), ((14 * 60, 16 * 60),))
    assert monday.hours[0] == (8 * 60 + 30, 9 * 60, "normal")
    assert monday.hours[-1] == (18 * 60, 19 * 60, "normal")
    assert str(quiet_sentence(TEXTS["ja"], monday, "<月曜日>")) == (
        '&lt;月曜日&gt;は、<span class="nowrap">14時〜16時</span>ごろがふだんすいています。')
    tuesday = quiet.section("x", 1)
    assert tuesday is not None
    assert (tuesday.open, tuesday.hours, tuesday.ranges) == (True, (), ())  # too little
    sunday = quiet.section("x", 6)
    assert sunday is not None
    assert not sunday.open
    assert quiet.section("y", 0) is None  # no history at all: no section
