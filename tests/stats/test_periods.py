"""Report periods: fiscal years run April 1 - March 31, weeks are ISO weeks, "last year" is the
same period a year earlier, and the export's pieces cover a period exactly once."""

from __future__ import annotations

import itertools
from datetime import date, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from hub.stats import periods
from hub.stats.periods import Period, PeriodError

DAYS = st.dates(min_value=date(2001, 1, 1), max_value=date(2099, 12, 31))


@given(DAYS)
def test_every_day_is_in_exactly_the_fiscal_year_that_holds_it(d: date) -> None:
    fy = periods.fiscal_year(d)
    p = periods.fy_period(fy)
    assert p.start <= d <= p.end
    assert p.start == date(fy, 4, 1)
    assert p.end == date(fy + 1, 3, 31)
    assert periods.fiscal_year(p.start - timedelta(days=1)) == fy - 1
    assert periods.fiscal_year(p.end + timedelta(days=1)) == fy + 1
    assert periods.parse("fy", str(fy)) == p
    assert periods.fy_label(fy, "ja") == f"{fy}年度"


def test_fiscal_year_boundaries() -> None:
    assert periods.fiscal_year(date(2027, 3, 31)) == 2026
    assert periods.fiscal_year(date(2027, 4, 1)) == 2027
    assert periods.parse("fy", "2026年度").days == 365
    assert periods.parse("fy", "2027").days == 366  # 2028-02-29 is in 2027年度


@given(DAYS)
def test_a_week_is_the_monday_to_sunday_iso_week_of_any_of_its_days(d: date) -> None:
    by_day = periods.parse("week", d.isoformat())
    by_key = periods.parse("week", periods.week_key(d))
    assert by_day == by_key
    assert by_day.start.weekday() == 0
    assert by_day.days == 7
    assert by_day.start <= d <= by_day.end
    assert periods.parse(by_day.kind, by_day.value()) == by_day


@given(DAYS)
def test_last_year_is_a_year_earlier_and_the_same_length_kind(d: date) -> None:
    for kind in ("day", "week", "month", "fy"):
        p = periods.parse(kind, d.isoformat() if kind in ("day", "week") else
                          d.strftime("%Y-%m") if kind == "month" else str(d.year))
        last = periods.last_year(p)
        assert last.kind == p.kind
        assert 350 <= (p.start - last.start).days <= 372
        if kind == "week":
            assert last.days == 7
            assert last.start.weekday() == 0
            y, w, _ = p.start.isocalendar()
            ly, lw, _ = last.start.isocalendar()
            assert ly == y - 1
            assert lw == min(w, date(y - 1, 12, 28).isocalendar()[1])
        if kind == "month":
            assert (last.start.year, last.start.month) == (p.start.year - 1, p.start.month)
        if kind == "fy":
            assert last == periods.fy_period(d.year - 1)


def test_29_february_last_year_is_the_28th() -> None:
    assert periods.last_year(periods.parse("day", "2028-02-29")).start == date(2027, 2, 28)
    p = periods.parse("range", start="2028-02-01", end="2028-02-29")
    assert periods.last_year(p) == Period("range", date(2027, 2, 1), date(2027, 2, 28))


@given(DAYS, st.integers(0, 800), st.integers(1, 3), st.integers(1, 9))
def test_pieces_cover_a_range_once_in_order(d: date, length: int, months: int,
                                            weeks: int) -> None:
    p = Period("range", d, d + timedelta(days=length))
    for parts in (list(periods.split(p, months)), list(periods.split_weeks(p, weeks))):
        assert parts[0].start == p.start
        assert parts[-1].end == p.end
        for a, b in itertools.pairwise(parts):
            assert b.start == a.end + timedelta(days=1)
    for part in list(periods.split_weeks(p, weeks))[:-1]:
        assert part.end.weekday() == 6  # no ISO week is cut in two


@pytest.mark.parametrize(("kind", "value", "start", "end", "field", "code"), [
    ("day", "2026-13-01", "", "", "value", "bad_date"),
    ("day", "1999-12-31", "", "", "value", "out_of_range"),
    ("week", "2026-W54", "", "", "value", "bad_week"),
    ("month", "2026-00", "", "", "value", "bad_month"),
    ("fy", "二〇二六", "", "", "value", "bad_year"),
    ("range", "", "2026-05-02", "2026-05-01", "end", "end_before_start"),
    ("range", "", "2020-04-01", "2026-03-31", "end", "too_long"),
    ("range", "", "", "2026-03-31", "start", "bad_date"),
    ("year", "2026", "", "", "kind", "bad_kind"),
])
def test_bad_periods_name_their_field(kind: str, value: str, start: str, end: str,
                                      field: str, code: str) -> None:
    with pytest.raises(PeriodError) as err:
        periods.parse(kind, value, start, end)
    assert (err.value.field, err.value.code) == (field, code)
