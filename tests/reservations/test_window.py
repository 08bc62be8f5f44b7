"""The booking window rule (issue 14, must-show 1) against an independent implementation here:
jpholiday for the national holidays (not the ``holidays`` package the product uses), a plain
day-by-day walk, the year-end closure written out, the Saturday rule, leap years, and the seed's
example (opening on 2026-11-17 makes 2027-01-01 the first bookable date)."""

from __future__ import annotations

import datetime as dt
import json
import subprocess
import sys
from pathlib import Path
from zoneinfo import ZoneInfo

import jpholiday
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.domain.calendar import Calendar
from hub.reservations.window import Rules, is_business_day, window

TOKYO = ZoneInfo("Asia/Tokyo")
REPO = Path(__file__).resolve().parents[2]


def closed_by_ward(d: dt.date, ward_days: frozenset[dt.date]) -> bool:
    year_end = (d.month == 12 and d.day >= 29) or (d.month == 1 and d.day <= 3)
    return year_end or d in ward_days


def business(d: dt.date, ward_days: frozenset[dt.date]) -> bool:
    return d.weekday() <= 4 and not jpholiday.is_holiday(d) and not closed_by_ward(d, ward_days)


def reference(s: dt.date, ward_days: frozenset[dt.date], published: dt.datetime | None,
              days_before: int, n_weekday: int, n_saturday: int,
              cutoff: tuple[int, int]) -> tuple[dt.datetime, dt.datetime]:
    opens = dt.datetime.combine(s - dt.timedelta(days=days_before), dt.time(0, 0), TOKYO)
    if published is not None:
        opens = max(opens, published)
    need = n_saturday if s.weekday() == 5 else n_weekday
    d, seen = s, 0
    while seen < need:
        d = d - dt.timedelta(days=1)
        if business(d, ward_days):
            seen += 1
    end = dt.datetime.combine(d, dt.time(0, 0), TOKYO) + dt.timedelta(
        hours=cutoff[0], minutes=cutoff[1]) - dt.timedelta(seconds=1)
    return opens, end


dates = st.dates(min_value=dt.date(2026, 1, 1), max_value=dt.date(2028, 12, 31))


@settings(max_examples=300, deadline=None)
@given(slot=dates, ward=st.frozensets(dates, max_size=4),
       published=st.none() | st.datetimes(min_value=dt.datetime(2025, 11, 1),
                                          max_value=dt.datetime(2028, 12, 31),
                                          timezones=st.just(TOKYO)),
       days_before=st.integers(1, 90), n=st.integers(1, 6), n_sat=st.integers(1, 8),
       cutoff=st.sampled_from([(24, 0), (17, 0), (12, 30)]))
def test_the_window_matches_an_independent_reading(
        slot: dt.date, ward: frozenset[dt.date], published: dt.datetime | None,
        days_before: int, n: int, n_sat: int, cutoff: tuple[int, int]) -> None:
    cal = Calendar(closed=ward)
    rules = Rules(days_before, n, n_sat, f"{cutoff[0]:02d}:{cutoff[1]:02d}")
    got = window(slot, cal, rules, published)
    first, last = reference(slot, ward, published, days_before, n, n_sat, cutoff)
    assert (got.first, got.last) == (first, last)


@settings(max_examples=200, deadline=None)
@given(dates)
def test_business_days_agree_with_jpholiday(d: dt.date) -> None:
    assert is_business_day(Calendar(), d) == business(d, frozenset())


def test_the_seeds_example_and_named_cases() -> None:
    cal = Calendar()
    # opening on 2026-11-17 makes 2027-01-01 the first date with bookable slots
    assert window(dt.date(2027, 1, 1), cal).first == dt.datetime(2026, 11, 17, tzinfo=TOKYO)
    assert window(dt.date(2027, 1, 2), cal).first == dt.datetime(2026, 11, 18, tzinfo=TOKYO)
    # Mon 2027-01-18: Fri 15, Thu 14, Wed 13 -> bookable until the end of Wed 13
    assert window(dt.date(2027, 1, 18), cal).last == dt.datetime(2027, 1, 13, 23, 59, 59,
                                                                 tzinfo=TOKYO)
    # a slot on Tue 2027-01-05: back over the year end (1/4 Mon, then 12/28 Mon, 12/25 Fri)
    assert window(dt.date(2027, 1, 5), cal).last.date() == dt.date(2026, 12, 25)
    # Saturday 2027-01-16: five business days back (15, 14, 13, 12, 8; 11 is 成人の日)
    assert window(dt.date(2027, 1, 16), cal).last.date() == dt.date(2027, 1, 8)
    # leap day: 45 days before 2028-03-01 is 2028-01-16
    assert window(dt.date(2028, 3, 1), cal).first.date() == dt.date(2028, 1, 16)
    # published later than 45 days before: opens at the publication
    late = dt.datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO)
    assert window(dt.date(2027, 1, 4), cal, published_at=late).first == late


def test_the_cli_prints_one_json_object() -> None:
    run = subprocess.run([sys.executable, "-m", "edge.cli", "hub", "reservations", "window",
                          "2027-01-16", "--saturday"], capture_output=True, text=True,
                         cwd=REPO, timeout=60, check=False)
    assert run.returncode == 0, run.stderr
    assert json.loads(run.stdout) == {"first_bookable": "2026-12-02T00:00:00+09:00",
                                      "last_bookable": "2027-01-08T23:59:59+09:00"}
    bad = subprocess.run([sys.executable, "-m", "edge.cli", "hub", "reservations", "window",
                          "2027-02-30"], capture_output=True, text=True, cwd=REPO, timeout=60,
                         check=False)
    assert bad.returncode == 2
    assert "2027-02-30" in bad.stderr
    assert "Traceback" not in bad.stderr
