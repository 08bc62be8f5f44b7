"""The fleet's pure parts: the incident engine (hypothesis), the rules and their form, and the
clock-offset and outbox trends. No I/O, time injected."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from hub.fleet.engine import Engine, Timing
from hub.fleet.rules import (
    RULES,
    Device,
    Finding,
    Observation,
    RuleError,
    Thresholds,
    findings,
    parse_form,
)
from hub.fleet.trends import ClockOffset, OutboxTrend

KEY = ("s1", "paper_out", "printer-k1")
HOLD, CLEAR = 30.0, 120.0
TIMING = Timing(clear_s=CLEAR, flap_rises=4, flap_window_s=600.0)


def run(toggles: Sequence[tuple[float, bool]], end: float, tick: float = 1.0,
        timing: Timing = TIMING, hold: float = HOLD) -> list[tuple[str, float]]:
    """Drive one key through ``toggles`` (time, active) with a tick every ``tick`` s until
    ``end``; the transitions as (kind, time)."""
    engine = Engine(timing)
    out: list[tuple[str, float]] = []
    changes = sorted(toggles)
    active, i, now = False, 0, 0.0
    while now <= end:
        while i < len(changes) and changes[i][0] <= now:
            active = changes[i][1]
            i += 1
        found = [Finding(KEY, hold, {})] if active else []
        out += [(t.kind, t.at) for t in engine.step(now, found)]
        now += tick
    return out


def test_a_steady_fault_opens_once_after_its_hold_and_recovers_once() -> None:
    out = run([(10, True), (200, False)], end=600)
    assert out == [("opened", 10 + HOLD), ("recovered", 200 + CLEAR)]


def test_a_blip_shorter_than_the_hold_opens_nothing() -> None:
    assert run([(10, True), (20, False)], end=400) == []


def test_ten_toggles_in_a_minute_open_once_and_recover_once() -> None:
    toggles = [(10 + 6 * k, k % 2 == 0) for k in range(10)]  # on, off, ... (3 s each)
    out = run(toggles, end=1000)
    assert [k for k, _ in out] == ["opened", "recovered"]  # the flap detector: one e-mail
    assert out[0][1] <= 10 + 6 * 7  # opened at the 4th start, not after it stops


def test_ten_toggles_while_open_send_nothing_more() -> None:
    # on from 0; at 100 the fault comes and goes 10 times (3 s each), last off at 154
    toggles = [(0, True), *((100 + 6 * k, k % 2 == 0) for k in range(10))]
    out = run(toggles, end=1000)
    assert out == [("opened", HOLD), ("recovered", 154 + CLEAR)]


def test_restored_incident_is_not_opened_again_and_recovers() -> None:
    engine = Engine(TIMING)
    engine.restore(KEY, 0.0)
    assert engine.step(10, [Finding(KEY, HOLD, {})]) == []
    assert engine.step(20, []) == []
    kinds = [t.kind for t in engine.step(20 + CLEAR, [])]
    assert kinds == ["recovered"]


def test_time_going_backwards_is_clamped() -> None:
    engine = Engine(TIMING)
    engine.step(100, [Finding(KEY, HOLD, {})])
    assert engine.step(50, [Finding(KEY, HOLD, {})]) == []
    assert [t.kind for t in engine.step(130, [Finding(KEY, HOLD, {})])] == ["opened"]


spells = st.lists(st.tuples(st.floats(0.5, 300, allow_nan=False),
                            st.floats(0.5, 300, allow_nan=False)), max_size=25)


def toggles_of(pairs: list[tuple[float, float]]) -> tuple[list[tuple[float, bool]], float]:
    """Alternating on/off spells from (on, off) durations; and the time the last one ends."""
    out, t = [], 1.0
    for on, off in pairs:
        out += [(t, True), (t + on, False)]
        t += on + off
    return out, t


@settings(max_examples=300, deadline=None)
@given(spells)
def test_opens_and_recoveries_alternate_and_every_open_recovers(
        pairs: list[tuple[float, float]]) -> None:
    toggles, end = toggles_of(pairs)
    out = run(toggles, end=end + CLEAR + 5, tick=0.5)
    kinds = [k for k, _ in out]
    assert kinds == ["opened", "recovered"] * (len(kinds) // 2)
    times = [t for _, t in out]
    assert times == sorted(times)
    # a recovery only after CLEAR s without the fault; so (a storm bound) at most one open
    # per CLEAR s of quiet: opens <= 1 + number of off-spells at least CLEAR long
    long_gaps = sum(1 for _on, off in pairs if off >= CLEAR)
    assert len(kinds) // 2 <= 1 + long_gaps


@settings(max_examples=200, deadline=None)
@given(spells.filter(lambda p: all(off < CLEAR - 1 for _on, off in p)))
def test_gaps_shorter_than_clear_give_at_most_one_open(pairs: list[tuple[float, float]]) -> None:
    toggles, end = toggles_of(pairs)
    out = run(toggles, end=end - 0.01, tick=0.5)  # up to the end of the last quiet spell
    assert sum(1 for k, _ in out if k == "opened") <= 1
    assert all(k == "opened" for k, _ in out)  # and no recovery while it keeps coming back


@settings(max_examples=200, deadline=None)
@given(st.floats(0, 500), st.floats(HOLD + 2, 2000))  # held a tick (1 s) longer
def test_a_fault_held_long_enough_always_opens_within_hold_plus_a_tick(
        start: float, length: float) -> None:
    out = run([(start, True), (start + length, False)], end=start + length + CLEAR + 2)
    assert out[0][0] == "opened"
    assert start + HOLD - 1e-9 <= out[0][1] <= start + HOLD + 1.0 + 1e-9
    assert out[-1][0] == "recovered"


@settings(max_examples=100, deadline=None)
@given(st.lists(st.floats(0, 1000), max_size=30))
def test_nothing_opens_without_a_finding(times: list[float]) -> None:
    engine = Engine(TIMING)
    for t in sorted(times):
        assert engine.step(t, []) == []


# --- rules -------------------------------------------------------------------------------------

def obs(**kw: object) -> Observation:
    base: dict[str, object] = {"site": "s1", "online": True, "open_now": True}
    return Observation(**{**base, **kw})  # type: ignore[arg-type]


def keys(o: Observation, th: Thresholds | None = None) -> set[tuple[str, str, str]]:
    return {f.key for f in findings(o, th or Thresholds(), hold_s=HOLD)}


def test_rules_find_each_fault() -> None:
    devices = (Device("p1", "printer", "error", "paper_out"),
               Device("p2", "printer", "degraded", "paper_near_end"),
               Device("p3", "printer", "error", "cover_open"),
               Device("led", "display", "offline", "timeout"),
               Device("sc", "scanner", "error", "unplugged"),
               Device("ok", "display", "ok", None))
    found = keys(obs(devices=devices, disk_pct=93.5, clock_offset_s=-45.0,
                     outbox_growing_s=601.0, outbox=40))
    assert found == {("s1", "paper_out", "p1"), ("s1", "paper_near_end", "p2"),
                     ("s1", "cover_open", "p3"), ("s1", "display_offline", "led"),
                     ("s1", "scanner_offline", "sc"), ("s1", "disk_full", ""),
                     ("s1", "clock_off", ""), ("s1", "outbox_growing", "")}


def test_below_thresholds_nothing_is_found() -> None:
    assert keys(obs(disk_pct=90.0, clock_offset_s=30.0, outbox_growing_s=599.0)) == set()


def test_offline_counts_only_in_opening_hours_and_hides_device_rules() -> None:
    paper = (Device("p1", "printer", "error", "paper_out"),)
    found = findings(obs(online=False, devices=paper), Thresholds(offline_minutes=7),
                     hold_s=HOLD)
    assert [(f.key, f.hold_s) for f in found] == [(("s1", "site_offline", ""), 420.0)]
    assert keys(obs(online=False, open_now=False, devices=paper)) == set()
    # displays and scanners switched off at night are no fault; paper out is one
    night = (Device("led", "display", "offline", "timeout"), *paper)
    assert keys(obs(open_now=False, devices=night)) == {("s1", "paper_out", "p1")}


def test_disabled_rules_find_nothing() -> None:
    th = Thresholds(enabled=frozenset(RULES) - {"disk_full"})
    assert keys(obs(disk_pct=99.0), th) == set()


def test_form_parses_and_refuses_at_the_field() -> None:
    form = {"rule_paper_out": "on", "rule_site_offline": "on", "offline_minutes": "10",
            "disk_pct": "85", "outbox_minutes": "5", "clock_s": "60"}
    th = parse_form(form)
    assert th == Thresholds(frozenset({"paper_out", "site_offline"}), 10, 85, 5, 60)
    assert Thresholds.from_json(th.to_json()) == th
    for field, value, code in (("disk_pct", "100", "out_of_range"),
                               ("disk_pct", "49", "out_of_range"),
                               ("clock_s", "", "required"), ("clock_s", "1.5", "not_a_number"),
                               ("offline_minutes", "１０", "not_a_number"),
                               ("outbox_minutes", "0", "out_of_range")):
        with pytest.raises(RuleError) as caught:
            parse_form({**form, field: value})
        assert (caught.value.field, caught.value.code) == (field, code)


def test_stored_rules_that_cannot_be_read_fall_back_to_defaults() -> None:
    assert Thresholds.from_json("not json") == Thresholds()
    assert Thresholds.from_json('{"disk_pct": 5, "enabled": ["nope", "disk_full"]}') == \
        Thresholds(enabled=frozenset({"disk_full"}))


# --- trends ------------------------------------------------------------------------------------

def ts(s: str) -> float:
    return datetime.fromisoformat(s).replace(tzinfo=UTC).timestamp()


def test_clock_offset_is_the_smallest_recent_sample_after_two() -> None:
    c = ClockOffset()
    base = ts("2026-12-07T09:00:00")
    c.add(base + 400, base, "a")  # a retained status read at the hub's start: 400 s old
    assert c.estimate(base + 400) is None  # one sample is not enough
    c.add(base + 420.2, base + 420, "b")  # the next refresh: 0.2 s of delivery
    c.add(base + 421, base + 420, "b")  # the same status told again: not a sample
    assert c.estimate(base + 421) == pytest.approx(0.2)
    c.add(base + 451.5, base + 450, "c")  # a slower delivery does not raise the estimate
    assert c.estimate(base + 452) == pytest.approx(0.2)


@given(st.floats(-3600, 3600), st.lists(st.floats(0, 3), min_size=2, max_size=5))
def test_clock_offset_estimate_is_within_the_smallest_delay(offset: float,
                                                            delays: list[float]) -> None:
    c = ClockOffset()
    for i, delay in enumerate(delays):
        edge_at = 1_000_000.0 + 30 * i
        c.add(edge_at + offset + delay, edge_at, str(i))
    est = c.estimate(1_000_000.0 + 30 * len(delays) + offset)
    assert est is not None
    assert offset - 1e-6 <= est <= offset + min(delays) + 1e-6


def test_outbox_grows_only_while_it_never_drains() -> None:
    o = OutboxTrend()
    o.add(0, 0)
    o.add(30, 3)
    assert o.growing_s(30) == 0.0  # not grown since the run began
    o.add(60, 8)
    assert o.growing_s(90) == 60.0
    o.add(120, 0)  # drained: the line works
    assert o.growing_s(150) == 0.0
