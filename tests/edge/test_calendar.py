"""The ward's calendar (issue 13 item 2): national holidays from ``holidays`` agree with
``jpholiday`` for 2026-2028; the year-end closure, ward closed days and a site's special days in
their order; the site TOML's ``[calendar]``; and the edge refusing tickets on a closed day on its
own (no hub involved: the decision is the edge's)."""

from __future__ import annotations

import dataclasses
from datetime import date, datetime, timedelta

import jpholiday
import pytest
from hypothesis import given
from hypothesis import strategies as st
from support import TZ, small_site

from edge.config import ConfigError, parse_site_config
from edge.domain import commands as c
from edge.domain.calendar import YEAR_END, Calendar, day, in_year_end, national_holiday, open_at
from edge.domain.state import State
from edge.domain.views import snapshot

WEEKDAYS = {d: ("08:30", "17:15") for d in range(5)}


def test_holidays_package_agrees_with_jpholiday_2026_to_2028() -> None:
    start, end = date(2026, 1, 1), date(2028, 12, 31)
    ours = {start + timedelta(days=i) for i in range((end - start).days + 1)
            if national_holiday(start + timedelta(days=i)) is not None}
    theirs = {d for d, _name in jpholiday.between(start, end)}
    assert ours == theirs
    assert len(ours) >= 48  # 16-17 a year, substitute holidays included
    assert national_holiday(date(2027, 1, 11)) == "成人の日"


@given(st.dates(min_value=date(2020, 1, 1), max_value=date(2040, 12, 31)))
def test_year_end_closure_is_december_29_to_january_3(d: date) -> None:
    want = (d.month == 12 and d.day >= 29) or (d.month == 1 and d.day <= 3)
    assert in_year_end(YEAR_END, d) == want
    assert (day(Calendar(national_holidays=False), None, d).reason == "year_end") == want


@given(st.dates(min_value=date(2026, 1, 1), max_value=date(2028, 12, 31)),
       st.sampled_from([None, ("09:00", "12:00")]))
def test_a_special_day_overrides_every_other_rule(d: date, hours: tuple[str, str] | None) -> None:
    cal = Calendar(closed=frozenset({d}), special={d: hours})
    got = day(cal, WEEKDAYS, d)
    assert (got.open, got.hours, got.reason) == (
        (True, hours, None) if hours else (False, None, "special_closed"))


def test_rule_order_and_open_at() -> None:
    cal = Calendar(closed=frozenset({date(2026, 12, 7)}))
    assert day(cal, WEEKDAYS, date(2026, 12, 7)).reason == "ward_closed"
    assert day(cal, WEEKDAYS, date(2026, 12, 5)).reason == "weekly"  # a Saturday
    assert day(cal, None, date(2026, 12, 5)).open  # no weekly hours: every day not closed
    assert day(cal, WEEKDAYS, date(2026, 11, 3)).reason == "national_holiday"
    assert day(dataclasses.replace(cal, national_holidays=False), WEEKDAYS,
               date(2026, 11, 3)).open
    monday = datetime(2026, 12, 14, 8, 29, tzinfo=TZ)
    assert not open_at(cal, WEEKDAYS, monday)
    assert open_at(cal, WEEKDAYS, monday.replace(minute=30))
    assert not open_at(cal, WEEKDAYS, monday.replace(hour=17, minute=15))


BASE = """
[site]
id = "cal-site"
name = { ja = "練馬", en = "Nerima" }
hours = { mon = ["08:30", "17:15"], tue = ["08:30", "17:15"] }

[[services]]
code = "A"
name = { ja = "住民異動", en = "Moving" }
range = [1, 99]
web = { from = "00:00", to = "24:00", checkin_required = false }

[[counters]]
id = "1"
name = { ja = "1番", en = "1" }
services = ["A"]
"""


def test_the_calendar_table_of_the_site_config() -> None:
    cfg = parse_site_config(BASE + """
[calendar]
year_end = ["12-28", "01-04"]
closed = [2027-02-01]
special = [{ date = 2027-02-02, from = "09:00", to = "12:00" },
           { date = 2027-02-08, closed = true }]
""")
    assert cfg.calendar == Calendar(True, ((12, 28), (1, 4)), frozenset({date(2027, 2, 1)}),
                                    {date(2027, 2, 2): ("09:00", "12:00"), date(2027, 2, 8): None})
    assert parse_site_config(BASE).calendar == Calendar()  # the ward's defaults
    for bad, where in [('year_end = ["12-29"]', "year_end"),
                       ('year_end = ["13-01", "01-03"]', "year_end"),
                       ('special = [{ date = 2027-02-02, from = "09:00" }]', "special"),
                       ('special = [{ date = 2027-02-02, closed = true, from = "09:00", '
                        'to = "10:00" }]', "special"), ("holidays = false", "holidays")]:
        with pytest.raises(ConfigError) as err:
            parse_site_config(BASE + "\n[calendar]\n" + bad + "\n")
        assert where in str(err.value), (bad, str(err.value))


@pytest.mark.parametrize(("when", "reason"), [
    (datetime(2026, 11, 23, 10, 0, tzinfo=TZ), "national_holiday"),  # 勤労感謝の日, a Monday
    (datetime(2026, 12, 31, 10, 0, tzinfo=TZ), "year_end"),
])
def test_the_edge_refuses_tickets_on_a_closed_day_by_itself(when: datetime, reason: str) -> None:
    cfg = parse_site_config(BASE)
    state = State(cfg)
    state.day, state.day_open = when.date().isoformat(), True
    ctx = c.Context(when, lambda: "id-1", lambda: "tok-000000001")
    for channel in ("kiosk", "web", "reservation"):
        with pytest.raises(c.Refused) as refused:
            c.decide(state, c.Issue("A", channel), ctx)
        assert refused.value.code == "office_closed"
        assert "休業" in refused.value.message_ja
    today = snapshot(state, when)["today"]
    assert (today["open"], today["reason"]) == (False, reason)
    assert "休業" in today["message"]["ja"]
    monday = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)
    assert c.decide(state, c.Issue("A", "kiosk"), dataclasses.replace(ctx, now=monday))


def test_a_weekday_without_hours_refuses_web_tickets_only() -> None:
    state = State(parse_site_config(BASE))
    wednesday = datetime(2026, 12, 2, 10, 0, tzinfo=TZ)
    state.day, state.day_open = wednesday.date().isoformat(), True
    ctx = c.Context(wednesday, lambda: "id-1", lambda: "tok-000000001")
    with pytest.raises(c.Refused):
        c.decide(state, c.Issue("A", "web"), ctx)
    assert c.decide(state, c.Issue("A", "kiosk"), ctx)  # staff at the office may still issue
    assert small_site().calendar.national_holidays is False  # queue tests: no closures
