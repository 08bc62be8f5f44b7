"""Wait estimates (issue 15 item 7): ranges from the queue's own pace, with no pace built in.

Rules held by hypothesis: a range is never upside down and never shrinks with more people
ahead; a log with every time x k gives ranges x k (the estimator has no seconds of its own);
the pace and its history are folded from the log, so a state rebuilt from it has the same. A
small simulated day (edge/bench/estimate_sim.py) must put about half its waits in range, at its
pace and ten times faster.
"""

from __future__ import annotations

import contextlib
import dataclasses
import math
from datetime import timedelta

from hypothesis import given, settings
from hypothesis import strategies as st

from edge.bench.estimate_sim import DaySpec, Site, simulate, site_config
from edge.domain import commands as c
from edge.domain.estimate import Pace, estimate, gamma_quantile, pace, wait_range
from edge.domain.model import SiteConfig
from edge.domain.state import State, apply, counters_serving

paces = st.builds(Pace, st.floats(1.0, 5000.0), st.floats(0.05, 4.0), st.floats(1.0, 200.0))
Op = tuple[str, str, int]
ops = st.lists(st.tuples(st.sampled_from(("issue", "issue", "call", "call", "finish", "open",
                                          "close")),
                         st.sampled_from(("1", "2", "3")), st.integers(0, 60)),
               min_size=5, max_size=80)


def config(handling_s: float) -> SiteConfig:
    cfg = site_config(DaySpec("t", 3, 1.0, None, {}))
    services = {"A": dataclasses.replace(cfg.services["A"], handling_s=handling_s)}
    return dataclasses.replace(cfg, services=services)


def play(log: list[Op], scale: float, handling_s: float = 300.0) -> Site:
    """Run ``log`` (command, counter, seconds before it) with every time x ``scale``."""
    site = Site(config(handling_s * scale))
    t0 = site.now
    elapsed = 0.0
    for kind, cid, gap in log:
        elapsed += gap * scale
        site.now = t0 + timedelta(seconds=elapsed)
        cmds: dict[str, c.Command] = {
            "issue": c.Issue("A"), "call": c.CallNext(cid), "finish": c.Finish(cid),
            "open": c.OpenCounter(cid), "close": c.CloseCounter(cid)}
        cmd = cmds[kind]
        with contextlib.suppress(c.Refused):
            site.run(cmd)
    return site


@given(paces, st.integers(1, 8), st.integers(-3, 60))
def test_range_is_never_upside_down_and_grows_with_calls_to_wait_for(
        p: Pace, counters: int, k: int) -> None:
    low, high = wait_range(p, counters, k)
    assert 0 <= low <= high
    low2, high2 = wait_range(p, counters, k + 1)
    assert (low2, high2) >= (low, high)
    assert low2 >= low
    assert high2 >= high
    if k <= 0:
        assert (low, high) == (0, 0)


@settings(max_examples=60, deadline=None)
@given(ops, st.sampled_from((2.0, 3.0, 10.0)))
def test_a_log_with_every_time_times_k_gives_ranges_times_k(log: list[Op], k: float) -> None:
    one, scaled = play(log, 1.0), play(log, k)
    s1, sk = one.state, scaled.state
    opened, free = counters_serving(s1, "A")
    assert (opened, free) == counters_serving(sk, "A")
    if opened == 0:
        return
    p1, pk = pace(s1, "A"), pace(sk, "A")
    assert math.isclose(pk.mean, k * p1.mean, rel_tol=1e-9)
    assert math.isclose(pk.cv2, p1.cv2, rel_tol=1e-9, abs_tol=1e-12)
    for ahead in range(6):
        lo1, hi1 = wait_range(p1, opened, ahead + 1 - free)
        lok, hik = wait_range(pk, opened, ahead + 1 - free)
        assert math.isclose(lok, k * lo1, rel_tol=1e-9, abs_tol=1e-6)
        assert math.isclose(hik, k * hi1, rel_tol=1e-9, abs_tol=1e-6)
        r1, rk = estimate(s1, "A", ahead), estimate(sk, "A", ahead)
        assert r1 is not None
        assert rk is not None
        assert abs(rk["high_s"] - k * r1["high_s"]) <= k / 2 + 0.5


@settings(max_examples=40, deadline=None)
@given(ops)
def test_ranges_never_shrink_with_people_ahead(log: list[Op]) -> None:
    state = play(log, 1.0).state
    ranges = [estimate(state, "A", ahead) for ahead in range(40)]
    if ranges[0] is None:
        return
    lows = [r["low_s"] for r in ranges if r]
    highs = [r["high_s"] for r in ranges if r]
    assert lows == sorted(lows)
    assert highs == sorted(highs)
    assert all(r["low_s"] <= r["high_s"] for r in ranges if r)


def test_gamma_quantiles_are_close_to_exact_ones() -> None:
    # exponential (shape 1): 25th and 75th percentiles are ln(4/3) and ln 4
    assert math.isclose(gamma_quantile(1, 1, -0.6745), math.log(4 / 3), rel_tol=0.03)
    assert math.isclose(gamma_quantile(1, 1, 0.6745), math.log(4), rel_tol=0.01)
    # Erlang 10: median ~ 9.669
    assert math.isclose(gamma_quantile(10, 1, 0.0), 9.669, rel_tol=0.002)


def test_pace_and_its_history_are_folded_from_the_log() -> None:
    site, _, _ = simulate(DaySpec("small", 2, 120.0, None, {8: 40, 9: 50}), seed=3)
    site, _, _ = simulate(DaySpec("small", 2, 120.0, None, {8: 40, 9: 50}), seed=4, site=site)
    live = site.state
    rebuilt = State(live.config)
    for env in site.log:
        apply(rebuilt, env)
    assert rebuilt.history_pace == live.history_pace
    assert live.history_pace
    assert rebuilt.stats == live.stats


def day_ratio(scale: float) -> tuple[float, int]:
    spec = DaySpec("small", 2, 120.0, None, {h: 0.85 * 2 * 3600 / 120 for h in range(8, 13)},
                   scale=scale)
    _, score, _ = simulate(spec, seed=5)
    return score.inside / score.scored, score.scored


def test_a_simulated_day_puts_about_half_its_waits_in_range() -> None:
    ratio, scored = day_ratio(1.0)
    assert scored >= 100
    assert 0.35 <= ratio <= 0.65


def test_ten_times_faster_the_same_day_is_still_about_half_in_range() -> None:
    ratio, _ = day_ratio(10.0)
    assert 0.35 <= ratio <= 0.65
