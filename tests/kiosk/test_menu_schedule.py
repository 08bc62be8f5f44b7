"""Which kiosk menu shows when (Q5, Q17): the rule in edge/domain/menus.py and the config check
that makes it unambiguous.

For any moment exactly one menu is chosen: staff's choice if any, else the menu whose window
covers the moment, else the default one; never a staff-only (seasonal) menu by accident. The
property tests generate menus as TOML, so what the config check accepts is what the rule runs on.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.config import ConfigError, load_site_config, parse_site_config
from edge.domain.menus import choose_menu, covers, default_menu
from edge.domain.model import Menu, Text, Window

TZ = ZoneInfo("Asia/Tokyo")
SITES = Path(__file__).resolve().parents[2] / "sites"
DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
HEAD = """
[site]
id = "menu-test"
name = { ja = "テスト", en = "Test" }

[[services]]
code = "A"
name = { ja = "住民異動届", en = "Moving" }
range = [1, 99]

[[counters]]
id = "1"
name = { ja = "1番窓口", en = "Counter 1" }
services = ["A"]
"""


def hhmm(minute: int) -> str:
    return f"{minute // 60:02d}:{minute % 60:02d}"


@st.composite
def windows(draw: st.DrawFn) -> tuple[list[str], int, int]:
    days = draw(st.lists(st.sampled_from(DAYS), min_size=1, max_size=7, unique=True))
    start = draw(st.integers(0, 24 * 60 - 15)) // 15 * 15
    end = draw(st.integers(start + 15, 24 * 60)) // 15 * 15
    return days, start, max(end, start + 15)


@st.composite
def sites(draw: st.DrawFn) -> tuple[str, list[list[tuple[list[str], int, int]]], int | None]:
    """TOML with 1-4 menus, each with 0-3 windows, and a default (or none, to be refused)."""
    n = draw(st.integers(1, 4))
    scheds = [draw(st.lists(windows(), max_size=3)) for _ in range(n)]
    default = draw(st.one_of(st.none(), st.integers(0, n - 1)))
    text = HEAD
    for i, sched in enumerate(scheds):
        wins = ", ".join(
            f'{{ days = [{", ".join(repr(d).replace(chr(39), chr(34)) for d in days)}], '
            f'from = "{hhmm(s)}", to = "{hhmm(e)}" }}' for days, s, e in sched)
        text += (f'\n[[menus]]\nid = "m{i}"\nname = {{ ja = "メニュー{i}", en = "Menu {i}" }}\n'
                 f'services = ["A"]\nschedule = [{wins}]\n')
        if default == i:
            text += "default = true\n"
    return text, scheds, default


def overlapping(scheds: list[list[tuple[list[str], int, int]]]) -> bool:
    flat = [(i, set(d), s, e) for i, sc in enumerate(scheds) for d, s, e in sc]
    return any(i != j and d & od and s < oe and os < e
               for k, (i, d, s, e) in enumerate(flat) for j, od, os, oe in flat[:k])


moments = st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31),
                       timezones=st.just(TZ))


@settings(max_examples=200, deadline=None)
@given(sites(), moments, st.one_of(st.none(), st.integers(0, 3)))
def test_exactly_one_menu_at_any_moment(site: tuple[str, list[list[tuple[list[str], int, int]]],
                                                   int | None],
                                        now: datetime, chosen: int | None) -> None:
    text, scheds, default = site
    must_refuse = (default is None and len(scheds) > 1) or overlapping(scheds)
    if must_refuse:
        with pytest.raises(ConfigError) as info:
            parse_site_config(text, "t.toml")
        keys = [p.key for p in info.value.problems]
        assert all(k.startswith("menus[") for k in keys), keys
        return
    cfg = parse_site_config(text, "t.toml")
    menus = cfg.menus
    assert sum(m.default for m in menus.values()) == 1  # exactly one default, also for one menu
    minute = now.hour * 60 + now.minute
    day = DAYS[now.weekday()]
    covering = [f"m{i}" for i, sc in enumerate(scheds)
                if any(day in d and s <= minute < e for d, s, e in sc)]
    assert len(covering) <= 1  # accepted configs never schedule two menus at once
    expected = covering[0] if covering else f"m{default if default is not None else 0}"
    assert choose_menu(menus, None, now) == expected
    assert choose_menu(menus, "nope", now) == expected  # a vanished choice is no choice
    staff = f"m{chosen}" if chosen is not None and chosen < len(scheds) else None
    if staff is not None:
        assert choose_menu(menus, staff, now) == staff  # staff can still switch by hand


def menu(mid: str, *wins: Window, default: bool = False) -> Menu:
    return Menu(mid, Text({"ja": mid, "en": mid}), ("A",), schedule=wins, default=default)


@given(moments)
def test_unscheduled_menu_shows_only_when_chosen(now: datetime) -> None:
    """The old rule fell back to the first menu without a schedule (the busy season)."""
    day = Window((0, 1, 2, 3, 4), "08:30", "17:15")
    menus = {"day": menu("day", day, default=True), "busy": menu("busy")}
    got = choose_menu(menus, None, now)
    assert got == "day"
    assert covers(day, now) == (now.weekday() < 5 and "08:30" <= now.strftime("%H:%M") < "17:15")
    assert choose_menu(menus, "busy", now) == "busy"
    assert default_menu({}) is None
    assert choose_menu({}, None, now) is None


def week(start: datetime, step_min: int = 15) -> list[datetime]:
    return [start + timedelta(minutes=k * step_min) for k in range(7 * 24 * 60 // step_min)]


def test_sample_main_office_follows_the_real_week() -> None:
    """Weekdays 08:30-17:15 regular, 17:15-19:00 evening, Saturday 09:00-17:00 the Saturday
    menu, else the default (regular); the busy season never shows unless staff choose it."""
    menus = load_site_config(SITES / "nerima-main.toml").menus
    seen: dict[str, set[str]] = {}
    for now in week(datetime(2026, 11, 23, 0, 0, tzinfo=TZ)):  # a Monday
        got = choose_menu(menus, None, now)
        assert got is not None
        seen.setdefault(got, set()).add(f"{DAYS[now.weekday()]} {now:%H:%M}")
        hm, wd = now.strftime("%H:%M"), now.weekday()
        if wd == 5 and "09:00" <= hm < "17:00":
            assert got == "saturday", now
        elif wd < 5 and "17:15" <= hm < "19:00":
            assert got == "evening", now
        else:
            assert got == "day", now
    assert "busy" not in seen
    assert choose_menu(menus, "busy", datetime(2026, 11, 28, 10, tzinfo=TZ)) == "busy"


@pytest.mark.parametrize("name", ["hikarigaoka.toml", "oizumi.toml"])
def test_sample_branches_show_their_menu_all_week(name: str) -> None:
    menus = load_site_config(SITES / name).menus
    assert {choose_menu(menus, None, now) for now in week(datetime(2026, 11, 23, tzinfo=TZ))} \
        == {"day"}
