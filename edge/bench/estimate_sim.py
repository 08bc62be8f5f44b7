"""Wait estimates scored on simulated days: the ``estimate_*`` figures of ``bench stats``.

Why a simulation of its own: a range meant to hold the middle half of outcomes can only be
judged against many outcomes of a known queue. Each day is event-driven (arrivals, the ends of
visits) and drives the real domain: every issue, call, finish and counter change is ``decide``
+ ``apply`` on a ``State``, exactly as the writer does it, and the range scored is what the real
estimator (edge/domain/estimate.py) gives the new ticket at its issue. Counters call the next
visitor as soon as they are free, so a visitor who finds a counter free is called at once:
those tickets (range 0-0) are counted apart, and the figures score the tickets that had to wait
on busy counters.

* ``mm3_day``: M/M/3, exponential visits of 180 s, arrivals at 90 % of capacity, 8:30-17:00.
* ``ward_day``: a ward office's day: arrivals by hour (a 9 o'clock rush over capacity),
  lognormal visits (mean 420 s, sigma 0.7), 8 counters, 3 of them closed 12:00-13:00; the
  estimator knows the same weekday a week before (another draw of the same day).
* ``x10``: ``mm3_day`` with every time divided by ten (the same draws), to show the estimator
  has no pace built in. The configured handling time stays 300 s in all days, so the prior is
  off (by 10x in this day) and the estimator has to find the real pace itself.

The baseline is what ZMS does: people ahead x today's observed mean handling time / open
counters (the configured handling time until a visit has ended). The same baseline told the
true mean of the simulation is reported too (``baseline_true_mean_mid_mae_s``): it is told what
the estimator has to learn, so it bounds what learning can reach.
"""

from __future__ import annotations

import heapq
import math
import random
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

from edge.domain.calendar import Calendar
from edge.domain.commands import (
    CallNext,
    CloseCounter,
    CloseDay,
    Command,
    Context,
    Finish,
    Issue,
    OpenCounter,
    decide,
    rollover,
)
from edge.domain.estimate import estimate
from edge.domain.model import Counter, Service, SiteConfig, Text
from edge.domain.state import State, apply, counters_serving
from edge.domain.views import ahead_of
from edge.protocol import ENVELOPE_VERSION, Envelope

TZ = ZoneInfo("Asia/Tokyo")
OPEN_S = 8.5 * 3600  # the day's clock starts at 8:30 site time


@dataclass(frozen=True)
class DaySpec:
    """One simulated day: arrivals per hour of day, visit lengths, counters and their breaks."""

    name: str
    counters: int
    mean_s: float
    sigma: float | None  # lognormal sigma; None: exponential visits
    per_hour: dict[int, float]  # hour of day (site time) -> arrivals per hour
    breaks: dict[str, tuple[float, float]] = field(default_factory=dict)  # counter -> hours
    scale: float = 1.0  # every time is divided by this (10: the day ten times faster)

    def visit(self, rng: random.Random) -> float:
        if self.sigma is None:
            return rng.expovariate(1 / self.mean_s) / self.scale
        mu = math.log(self.mean_s) - self.sigma ** 2 / 2
        return rng.lognormvariate(mu, self.sigma) / self.scale


MM3 = DaySpec("mm3_day", 3, 180.0, None, {h: 0.9 * 3 * 3600 / 180.0 for h in range(8, 17)})
WARD = DaySpec("ward_day", 8, 420.0, 0.7,
               {8: 32, 9: 74, 10: 64, 11: 56, 12: 38, 13: 64, 14: 61, 15: 48, 16: 32},
               breaks={c: (12.0, 13.0) for c in ("6", "7", "8")})
BASELINE = ("people ahead x today's mean handling time so far (the configured 300 s before "
            "the first) / open counters; baseline_true_mean_mid_mae_s: told the true mean")
CLOSE_H = 17.0  # the last arrival (site time); visitors already waiting are still served


def site_config(spec: DaySpec) -> SiteConfig:
    """One queue "A" (configured handling time: the default 300 s) served by every counter."""
    txt = Text({"ja": "窓口", "en": "Counter"})
    counters = {str(i): Counter(str(i), txt, ("A",)) for i in range(1, spec.counters + 1)}
    services = {"A": Service("A", Text({"ja": "証明書", "en": "Certificates"}), 1, 999)}
    return SiteConfig(f"sim-{spec.name}", txt, "Asia/Tokyo", services, counters,
                      access="open", calendar=Calendar(national_holidays=False, year_end=None))


class Site:
    """``State`` + ``decide`` + ``apply`` with envelopes built as the writer builds them."""

    def __init__(self, config: SiteConfig) -> None:
        self.state = State(config)
        self.log: list[Envelope] = []  # every event, for a rebuild
        self._n = 0
        self.now = datetime(2026, 11, 23, 8, 30, tzinfo=TZ)

    def _id(self) -> str:
        self._n += 1
        return f"sim-{self._n:07d}"

    def _emit(self, kind: str, data: dict[str, Any]) -> Envelope:
        day = data["day"] if kind == "DayOpened" else self.state.day
        env = Envelope(ENVELOPE_VERSION, self.state.config.site, self.state.seq + 1, self._id(),
                       self.now.isoformat(), str(day), kind, data)
        apply(self.state, env)
        self.log.append(env)
        return env

    def run(self, cmd: Command) -> list[Envelope]:
        out = [self._emit(k, d) for k, d in rollover(self.state, self.now)]
        ctx = Context(self.now, self._id, self._id)
        return out + [self._emit(k, d) for k, d in decide(self.state, cmd, ctx)]


@dataclass
class Score:
    """Ranges given at issue against the waits that followed (issue to first call)."""

    scored: int = 0
    inside: int = 0
    est_err: float = 0.0
    base_err: float = 0.0  # the baseline with today's observed mean handling time
    true_err: float = 0.0  # the baseline told the true mean
    at_once: int = 0  # found a counter free: range 0-0, called at once
    at_once_inside: int = 0
    pending: dict[str, tuple[float, int, int, float, float, bool]] = field(default_factory=dict)

    def called(self, ticket: str, t: float) -> None:
        issued, low, high, base, true, waited = self.pending.pop(ticket)
        wait = t - issued
        if not waited:
            self.at_once += 1
            self.at_once_inside += low <= wait <= high
            return
        self.scored += 1
        self.inside += low <= wait <= high
        self.est_err += abs(wait - (low + high) / 2)
        self.base_err += abs(wait - base)
        self.true_err += abs(wait - true)

    def mae(self, err: float) -> float:
        return round(err / max(self.scored, 1), 1)


def simulate(spec: DaySpec, seed: int, site: Site | None = None,
             score: Score | None = None) -> tuple[Site, Score, int]:
    """Run one day at ``site`` (a fresh one if None): returns the site, the score and the
    number of arrivals. The day is the Monday after the site's last one."""
    rng = random.Random(seed)
    config = site_config(spec)
    site = site or Site(config)
    score = score or Score()
    day0 = site.now.replace(hour=0, minute=0, second=0) + timedelta(
        days=7 if site.state.day is not None else 0)
    k = spec.scale

    def clock(t: float) -> None:
        site.now = day0 + timedelta(seconds=t)

    events: list[tuple[float, int, str, str]] = []
    order = 0

    def push(t: float, kind: str, who: str = "") -> None:
        nonlocal order
        order += 1
        heapq.heappush(events, (t, order, kind, who))

    def arrival_after(t: float) -> float | None:
        """Next arrival after ``t`` (piecewise-constant rate by hour, in scaled time)."""
        while True:
            hour = int(t * k / 3600)
            rate = spec.per_hour.get(hour, 0.0) * k / 3600
            end = (hour + 1) * 3600 / k
            if hour * 3600 >= CLOSE_H * 3600:
                return None
            if rate > 0:
                nxt = t + rng.expovariate(rate)
                if nxt < end:
                    return nxt if nxt * k < CLOSE_H * 3600 else None
            t = end

    def call(cid: str, t: float) -> None:
        out = site.run(CallNext(cid))
        if out and out[-1].type == "TicketCalled":
            score.called(out[-1].data["ticket"], t)
            push(t + spec.visit(rng), "done", cid)

    clock(OPEN_S / k)
    for cid in config.counters:
        site.run(OpenCounter(cid))
    for cid, (off, on) in spec.breaks.items():
        push(off * 3600 / k, "break", cid)
        push(on * 3600 / k, "back", cid)
    first = arrival_after(OPEN_S / k)
    if first is not None:
        push(first, "arrive")
    arrivals = 0
    on_break: set[str] = set()
    while events:
        t, _, kind, cid = heapq.heappop(events)
        clock(t)
        state = site.state
        if kind == "arrive":
            arrivals += 1
            tk = site.state.tickets[site.run(Issue("A"))[-1].data["ticket"]]
            ahead = ahead_of(state, tk)
            opened, free = counters_serving(state, "A")
            est = estimate(state, "A", ahead) or {"low_s": 0, "high_s": 0}
            seen = state.stat("A").handling
            mean = sum(seen) / len(seen) if seen else config.services["A"].handling_s
            score.pending[tk.id] = (t, est["low_s"], est["high_s"], ahead * mean / max(opened, 1),
                                    ahead * spec.mean_s / k / max(opened, 1), ahead >= free)
            idle = next((c for c in config.counters if state.counter(c).open
                         and state.counter(c).current is None), None)
            if idle is not None:
                call(idle, t)
            nxt = arrival_after(t)
            if nxt is not None:
                push(nxt, "arrive")
        elif kind == "done":
            if cid in spec.breaks and _in_break(spec, cid, t):
                site.run(Finish(cid))
                site.run(CloseCounter(cid))
                on_break.add(cid)
            elif state.waiting.get("A"):
                call(cid, t)
            else:
                site.run(Finish(cid))
        elif kind == "break" and state.counter(cid).current is None:
            site.run(CloseCounter(cid))
            on_break.add(cid)
        elif kind == "back" and cid in on_break:
            on_break.discard(cid)
            site.run(OpenCounter(cid))
            if state.waiting.get("A"):
                call(cid, t)
    site.run(CloseDay())
    return site, score, arrivals


def _in_break(spec: DaySpec, cid: str, t: float) -> bool:
    off, on = spec.breaks[cid]
    return off * 3600 <= t * spec.scale < on * 3600


def _day_figures(spec: DaySpec, score: Score, arrivals: int) -> dict[str, Any]:
    return {"arrivals": arrivals, "counters": spec.counters,
            "mean_handling_s": spec.mean_s / spec.scale,
            "handling": "exponential" if spec.sigma is None else f"lognormal sigma {spec.sigma}",
            "tickets_scored": score.scored, "called_at_once": score.at_once,
            "estimate_mid_mae_s": score.mae(score.est_err),
            "baseline_true_mean_mid_mae_s": score.mae(score.true_err),
            "in_range_all_tickets": round((score.inside + score.at_once_inside)
                                          / max(score.scored + score.at_once, 1), 3)}


def draws(spec: DaySpec, seeds: range, history: bool) -> dict[str, Any]:
    """The same day drawn again with other seeds: how much the one-day figures vary."""
    ratios, wins, est_err, base_err = [], 0, 0.0, 0.0
    for seed in seeds:
        site = simulate(spec, seed=seed + 1000)[0] if history else None
        _, score, _ = simulate(spec, seed=seed, site=site)
        ratios.append(score.inside / max(score.scored, 1))
        wins += score.est_err <= score.base_err
        est_err += score.est_err / max(score.scored, 1)
        base_err += score.base_err / max(score.scored, 1)
    return {"draws": len(seeds), "in_range_mean": round(sum(ratios) / len(ratios), 3),
            "in_range_min": round(min(ratios), 3), "in_range_max": round(max(ratios), 3),
            "mae_vs_baseline": round(est_err / base_err, 3), "estimate_mae_not_above": wins}


def estimate_figures(quick: bool) -> dict[str, Any]:
    """The figures (module docstring). ``quick``: the ward day without the week before (no
    history: the prior is the configured handling time) and no further draws."""
    ratio: dict[str, float] = {}
    est_mae: dict[str, float] = {}
    base_mae: dict[str, float] = {}
    days: dict[str, Any] = {}
    runs: list[tuple[DaySpec, Site | None]] = [(MM3, None)]
    ward_site = None if quick else simulate(WARD, seed=11)[0]  # the same weekday a week before
    runs.append((WARD, ward_site))
    for spec, site in runs:
        _, score, arrivals = simulate(spec, seed=7, site=site)
        ratio[spec.name] = round(score.inside / max(score.scored, 1), 3)
        est_mae[spec.name] = score.mae(score.est_err)
        base_mae[spec.name] = score.mae(score.base_err)
        days[spec.name] = _day_figures(spec, score, arrivals)
        days[spec.name]["history"] = "the same weekday a week before" if site else "none"
    x10 = DaySpec("mm3_day_x10", MM3.counters, MM3.mean_s, MM3.sigma, MM3.per_hour, scale=10.0)
    _, score, arrivals = simulate(x10, seed=7)
    days["mm3_day_x10"] = _day_figures(x10, score, arrivals)
    days["baseline"] = BASELINE
    if not quick:
        days["mm3_day"]["other_seeds"] = draws(MM3, range(1, 21), history=False)
        days["ward_day"]["other_seeds"] = draws(WARD, range(1, 21), history=True)
    return {
        "estimate_in_range_ratio": ratio,
        "estimate_mid_mae_s": est_mae,
        "baseline_mid_mae_s": base_mae,
        "estimate_in_range_ratio_x10": round(score.inside / max(score.scored, 1), 3),
        "estimate_days": days,
    }
