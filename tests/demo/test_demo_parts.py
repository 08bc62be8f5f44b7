"""The demo's pieces without running it: the ``--at`` clock, the terminal layout, the banner's
counters and status URL, the mail sink and the hub's injected clock."""

from __future__ import annotations

import asyncio
import io
import tomllib
from collections import deque
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from edge.config import load_site_config, parse_site_config
from edge.demo import SITES
from edge.demo_banner import split_counters, with_status_url
from edge.demo_clock import TZ, AtError, choose, closed_sites, parse_at
from edge.demo_mail import render
from edge.demo_screen import Terminal, clip, cols, rows_of
from edge.domain.calendar import day
from edge.domain.clock import SimulatedClock
from edge.domain.model import SiteConfig
from edge.paths import data_dir
from hub.notify.senders import MemorySink, Notice, SinkMessage
from hub.store.store import now_utc, use_clock


def _configs() -> list[SiteConfig]:
    return [load_site_config(data_dir("sites") / name) for name, _ in SITES]


CONFIGS = _configs()
SAT_NIGHT = datetime(2026, 12, 5, 2, 55, tzinfo=TZ)  # a Saturday
MONDAY_1030 = datetime(2026, 12, 7, 10, 30, tzinfo=TZ)


# --- the clock ----------------------------------------------------------------------------------
@given(st.integers(0, 23), st.integers(0, 59))
def test_parse_at_time_of_day(h: int, m: int) -> None:
    assert parse_at(f"{h:02d}:{m:02d}") == time(h, m)
    assert parse_at(f"{h}:{m:02d}") == time(h, m)


@given(st.datetimes(min_value=datetime(2000, 1, 1), max_value=datetime(2099, 12, 31)))
def test_parse_at_date_and_time(when: datetime) -> None:
    want = when.replace(second=0, microsecond=0, tzinfo=TZ)
    assert parse_at(f"{when:%Y-%m-%dT%H:%M}") == want
    assert parse_at(f"{when:%Y-%m-%d %H:%M}") == want


@pytest.mark.parametrize("bad", ["", "25:00", "10:60", "10", "tomorrow", "2026-02-30T10:00",
                                 "2026-12-07", "10:30:00"])
def test_parse_at_refuses(bad: str) -> None:
    with pytest.raises(AtError, match="HH:MM"):
        parse_at(bad)


def test_parse_at_now_is_the_real_clock() -> None:
    assert parse_at(" NOW ") is None


@settings(deadline=None)  # the first date of a year computes that year's holidays
@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)))
def test_closed_sites_matches_hours(naive: datetime) -> None:
    when = naive.replace(tzinfo=TZ)
    closed = closed_sites(CONFIGS, when)
    hhmm = when.strftime("%H:%M")
    for config in CONFIGS:
        assert config.hours is not None
        today = day(config.calendar, config.hours, when.date())  # holidays, the year end
        span = today.hours
        web = [s.web for s in config.services.values() if s.web is not None]
        is_open = span is not None and span[0] <= hhmm < span[1] and all(
            w.start <= hhmm < w.end for w in web)
        assert (config.site not in closed) == is_open


def test_default_moves_a_closed_night_to_the_next_open_morning() -> None:
    choice = choose(None, CONFIGS, SAT_NIGHT)
    assert (choice.start, choice.reason, choice.closed) == (MONDAY_1030, "closed", ())


def test_default_keeps_the_real_clock_when_open() -> None:
    real = datetime(2026, 12, 8, 11, 0, tzinfo=TZ)  # a Tuesday morning
    choice = choose(None, CONFIGS, real)
    assert (choice.start, choice.reason) == (None, "open")


@settings(deadline=None)  # as above: a year's holidays are computed at its first date
@given(st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2027, 12, 31)))
def test_default_always_starts_open(naive: datetime) -> None:
    real = naive.replace(tzinfo=TZ)
    choice = choose(None, CONFIGS, real)
    start = choice.start or real
    assert not closed_sites(CONFIGS, start)
    assert start >= real - timedelta(seconds=1)


def test_at_time_of_day_picks_an_open_day_and_a_date_is_kept() -> None:
    assert choose("10:30", CONFIGS, SAT_NIGHT).start == MONDAY_1030
    exact = choose("2026-12-05T10:30", CONFIGS, SAT_NIGHT)
    assert exact.start == datetime(2026, 12, 5, 10, 30, tzinfo=TZ)
    assert set(exact.closed) == {"hikarigaoka", "oizumi"}  # branches are closed on Saturdays
    assert choose("now", CONFIGS, SAT_NIGHT).start is None


def test_simulated_clock_runs_from_its_start() -> None:
    ticks = [100.0]
    start = datetime(2026, 12, 7, 10, 30, tzinfo=TZ)
    clock = SimulatedClock(start, monotonic=lambda: ticks[0])
    assert clock.now() == start
    ticks[0] += 90.5
    assert clock.now() == start + timedelta(seconds=90.5)
    fast = SimulatedClock(start, rate=20, monotonic=lambda: ticks[0])
    ticks[0] += 3
    assert fast.now() == start + timedelta(seconds=60)
    with pytest.raises(ValueError, match="aware"):
        SimulatedClock(datetime(2026, 12, 7, 10, 30))


def test_hub_now_follows_the_injected_clock() -> None:
    fixed = datetime(2030, 1, 2, 3, 4, tzinfo=TZ)
    use_clock(lambda: fixed)
    try:
        assert now_utc() == fixed
        assert now_utc().tzinfo == UTC
    finally:
        use_clock(None)
    assert abs((now_utc() - datetime.now(UTC)).total_seconds()) < 5


# --- the terminal -------------------------------------------------------------------------------
def test_terminal_keeps_the_banner_and_redraws_below_it() -> None:
    out = io.StringIO()
    size = [(80, 24)]
    banner = ["madoguchi demo", "hub http://127.0.0.1:8090/", "x" * 100]  # the last wraps
    term = Terminal(banner, live=True, out=out, size=lambda: size[0])
    term.start()
    term.draw(["summary 1", "line 2"])
    first = out.getvalue()
    assert first.count("hub http://127.0.0.1:8090/") == 1
    top = rows_of(banner, 80) + 2  # 4 rows of banner, a blank one, then the summary
    assert top == 6
    assert f"\x1b[{top};24r" in first  # rows below the banner scroll, the banner never does
    assert first.endswith(f"\x1b[{top};1H\x1b[Jsummary 1\nline 2")
    term.draw(["summary 2"])
    second = out.getvalue()[len(first):]
    assert second == f"\x1b[{top};1H\x1b[Jsummary 2"  # no clear screen, no banner again
    size[0] = (120, 30)  # resized: everything is laid out again
    term.draw(["summary 3"])
    third = out.getvalue()[len(first) + len(second):]
    assert "\x1b[2J" in third
    assert "hub http://127.0.0.1:8090/" in third
    term.stop()
    assert out.getvalue().endswith("\x1b[r\x1b[30;1H\n")


def test_terminal_cuts_the_summary_to_the_rows_left() -> None:
    out = io.StringIO()
    term = Terminal(["a", "b"], live=True, out=out, size=lambda: (40, 8))
    term.draw([f"line {i} " + "長" * 30 for i in range(20)])
    drawn = out.getvalue().split("\x1b[J", 1)[1].split("\n")
    assert len(drawn) == 8 - 4 + 1  # rows 4..8
    assert all(cols(line) <= 39 for line in drawn)


def test_terminal_too_small_for_a_summary_says_so() -> None:
    out = io.StringIO()
    term = Terminal(["a", "b"], live=True, out=out, size=lambda: (100, 6))
    term.draw([f"line {i}" for i in range(10)])
    assert out.getvalue().endswith("\x1b[4;1H\x1b[J端末を大きくすると概要が表示されます / "
                                   "enlarge the terminal for the summary")


def test_terminal_without_a_tty_prints_the_banner_once_then_lines() -> None:
    out = io.StringIO()
    term = Terminal(["banner"], live=False, out=out)
    term.start()
    term.draw(["a", "b"])
    term.draw(["c"])
    assert out.getvalue() == "banner\na  b\nc\n"
    assert "\x1b" not in out.getvalue()


@given(st.text(alphabet="aあ漢1 ", max_size=40), st.integers(1, 30))
def test_clip_never_exceeds_the_width(text: str, width: int) -> None:
    cut = clip(text, width)
    assert cols(cut) <= width
    assert text.startswith(cut)
    assert cut == text or cols(text[:len(cut) + 1]) > width


# --- banner pieces ------------------------------------------------------------------------------
@pytest.mark.parametrize("config", CONFIGS, ids=lambda c: c.site)
def test_counter_split_leaves_counter_1_and_serves_every_service(config: SiteConfig) -> None:
    simulated, closed, user = split_counters(config)
    assert user == ["1"]
    assert sorted(simulated + closed + user) == sorted(config.counters)
    assert not set(simulated) & set(closed)
    served = {s for cid in simulated for s in config.counters[cid].services}
    assert served == set(config.services)  # the simulation alone keeps every queue moving


@pytest.mark.parametrize("name", [n for n, _ in SITES])
def test_status_url_points_at_the_demo_hub(name: str) -> None:
    path = data_dir("sites") / name
    url = "http://127.0.0.1:18090/t/{token}"
    text = with_status_url(path.read_text(encoding="utf-8"), url)
    assert tomllib.loads(text)["site"]["status_url"] == url
    assert parse_site_config(text, base=path.parent).status_url == url
    bare = "\n".join(line for line in text.splitlines() if not line.startswith("status_url"))
    assert tomllib.loads(with_status_url(bare, url))["site"]["status_url"] == url


# --- the mail sink ------------------------------------------------------------------------------
def test_memory_sink_keeps_messages_and_never_shows_them_in_repr() -> None:
    box: deque[SinkMessage] = deque(maxlen=2)
    at = datetime(2026, 12, 7, 1, 30, tzinfo=UTC)
    sink = MemorySink("email", box, lambda: at)
    for i in range(3):
        asyncio.run(sink.send(Notice(f"s{i}:ahead", f"p{i}@example.jp", "ja", f"件名{i}", "本文")))
    assert [m.to for m in box] == ["p1@example.jp", "p2@example.jp"]
    assert box[0].at == at
    assert box[0].channel == "email"
    assert "example.jp" not in repr(box[0])
    assert "本文" not in repr(box[0])


def test_mail_page_escapes_and_lists_newest_first() -> None:
    at = datetime(2026, 12, 7, 1, 30, tzinfo=UTC)
    box = deque([SinkMessage(at, "email", "old@example.jp", "ja", "古い", "a"),
                 SinkMessage(at, "sms", "<script>", "en", "new & <b>", "b")])
    page = render(box)
    assert "<script>" not in page
    assert "&lt;script&gt;" in page
    assert "new &amp; &lt;b&gt;" in page
    assert page.index("&lt;script&gt;") < page.index("old@example.jp")
    assert "2026-12-07 10:30:00" in page  # shown in Tokyo time
    assert "デモ専用" in page
    assert "2 件" in page
    assert "まだありません" in render(deque())


def test_dates_in_the_banner_are_tokyo_weekdays() -> None:
    from edge.demo_clock import banner_lines, stamp

    assert stamp(MONDAY_1030) == "2026-12-07 (月 Mon) 10:30"
    text = "\n".join(banner_lines(choose(None, CONFIGS, SAT_NIGHT)))
    assert "受付時間外" in text
    assert "2026-12-07 (月 Mon) 10:30" in text
    assert "--at" in text
    assert date(2026, 12, 7).weekday() == 0


# --- the demo's staff account and the hub line ----------------------------------------------------
def test_banner_names_the_sign_in_url_and_the_demo_account() -> None:
    from edge.demo_banner import staff_lines

    text = "\n".join(staff_lines("http://127.0.0.1:8090", ("demo", "demo-0123abcd")))
    assert "http://127.0.0.1:8090/auth/login" in text
    assert "ID demo" in text
    assert "demo-0123abcd" in text
    assert "demo only" in text
    assert "デモ専用" in text  # said to be a demo account, in both languages
    assert "http://127.0.0.1:8090/staff/sites" in text
    assert "password" not in "\n".join(staff_lines("http://127.0.0.1:8090", None))
    assert "made-up" not in text  # only the three-site demo seeds past weeks
    seeded = "\n".join(staff_lines("http://127.0.0.1:8090", ("demo", "x"), history=True))
    assert "http://127.0.0.1:8090/admin/stats" in seeded
    assert "架空" in seeded


async def test_demo_history_fills_eight_weeks_of_each_site(tmp_path: Path) -> None:
    """Past open days only (none today or on closed days), each site's, counted by the real
    tally: issued equals the waits' tickets plus those never called."""
    from sqlalchemy import func, select

    from edge.config import parse_site_config
    from edge.demo_history import seed_history
    from edge.domain.calendar import day as calendar_day
    from hub.stats.tables import stats_rollup as r
    from hub.store import HubStore

    names = ("nerima-main.toml", "oizumi.toml")
    tomls = [(Path("sites") / n).read_text(encoding="utf-8") for n in names]
    store = await HubStore.open(f"sqlite:///{tmp_path}/hub.db")
    try:
        tickets = await seed_history(store, tomls, date(2026, 12, 7), weeks=3)
        async with store.read() as tx:
            rows = (await tx.conn.execute(
                select(r.c.site, r.c.day, func.sum(r.c.n)).where(r.c.measure == "issued")
                .group_by(r.c.site, r.c.day))).all()
    finally:
        await store.close()
    assert {site for site, _d, _n in rows} == {"nerima-main", "oizumi"}
    configs = {c.site: c for c in map(parse_site_config, tomls)}
    for site, d, _n in rows:
        assert "2026-11-16" <= d < "2026-12-07"
        cfg = configs[site]
        assert calendar_day(cfg.calendar, cfg.hours, date.fromisoformat(d)).open, (site, d)
    assert len({d for site, d, _n in rows if site == "oizumi"}) >= 10
    assert sum(int(n) for _s, _d, n in rows) == tickets


async def test_hub_line_reads_the_sites_with_the_demo_staff_session(tmp_path: Path) -> None:
    """Anonymous, ``/api/sites`` answers 401 and the line says "—"; the demo's account signs
    in, and signs in again when its session is gone (expired or removed)."""
    from sqlalchemy import delete

    from edge.demo import _demo_staff, _hub_settings, demo_password
    from edge.demo_screen import HubPoll
    from hub.app import start_hub
    from hub.auth import service
    from hub.auth.tables import staff_sessions

    settings = _hub_settings("http://127.0.0.1:0")
    hub = await start_hub(f"sqlite:///{tmp_path}/hub.db", None, port=0, settings=settings)
    try:
        (login, password), poll = await _demo_staff(hub, settings)
        assert login == "demo"
        assert password != demo_password()  # new on every run
        assert await HubPoll(hub.url).line() == "ハブ hub: —"
        assert await poll.line() == "ハブ hub: no site yet"
        first = poll.sid
        assert first is not None
        async with hub.store.begin() as tx:
            await tx.conn.execute(delete(staff_sessions))
        assert await poll.line() == "ハブ hub: no site yet"
        assert poll.sid not in (None, first)
        assert (await service.login(hub.store, settings, login, password,
                                    "127.0.0.1")).outcome == "ok"
    finally:
        await hub.stop()
