"""Wait estimates: a range meant to hold the middle half of the waits that follow.

Why this way. A visitor with ``ahead`` people before them is called at the (ahead + 1)-th call
out of their queue, so their wait is the sum of that many gaps between calls. The gaps are
learnt from the queue itself, in counter-seconds per call (``ServiceStats.pace``: the gap
between calls while people were waiting on busy counters, x the counters open), so one figure
covers slow visits, staff pace and counters shared with other queues, and opening or closing a
counter changes the estimate at once (gap = counter-seconds / counters open now).

* Pace: the mean and spread of the latest ``PACE_WINDOW`` calls of today, blended with a prior:
  past days' pace for this weekday and hour (worth as many calls as it holds, up to a window),
  else today's handling times, else past days' handling times, else the configured
  ``handling_s`` (each worth ``PRIOR_CALLS`` calls). Every constant counts calls; the only
  seconds are the ones observed (or configured), so a queue ten times faster gets ranges ten
  times shorter.
* Wait: gamma-distributed with the mean and variance of ``k`` gaps (k = ahead + 1 - free
  counters), the variance widened by the uncertainty of a mean learnt from few calls. When a
  counter is free for the visitor the range is 0-0.
* Range: its 25th and 75th percentiles (Wilson-Hilferty approximation, pure Python).

``edge/bench/estimate_sim.py`` scores the ranges on simulated days (``madoguchi bench stats``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import datetime

from edge.domain.state import PACE_WINDOW, State, counters_serving

PRIOR_CALLS = 3.0  # how many of today's calls the prior counts for
Z_QUARTILE = 0.6744897501960817  # standard normal 75th percentile
MIN_CV2 = 0.05  # a spread of gaps no queue of people goes below (a pure number)


@dataclass(frozen=True, slots=True)
class Pace:
    """Counter-seconds per call: mean, squared coefficient of variation, calls it rests on."""

    mean: float
    cv2: float
    calls: float


def _prior(state: State, code: str) -> Pace:
    """The pace before today's calls say otherwise. Past days' calls at this weekday and hour
    count for as many calls as they hold, up to a window's worth; a handling time for
    ``PRIOR_CALLS`` (a visit's length is not the queue's pace when counters serve several)."""
    now = state.last_at
    if now is not None and state.day is not None:
        weekday = datetime.fromisoformat(state.day).weekday()
        hist = state.history_pace.get((code, weekday, now.hour))
        if hist is not None and hist.n >= 1 and hist.total > 0:
            mean = hist.total / hist.n
            cv2 = max(hist.squares / hist.n / (mean * mean) - 1, MIN_CV2)
            return Pace(mean, cv2, min(hist.n, PACE_WINDOW))
    st = state.stats.get(code)
    if st is not None and st.handling and sum(st.handling) > 0:
        return Pace(sum(st.handling) / len(st.handling), 1.0, PRIOR_CALLS)
    if code in state.history_handling:
        return Pace(state.history_handling[code][0], 1.0, PRIOR_CALLS)
    return Pace(state.config.services[code].handling_s, 1.0, PRIOR_CALLS)


def pace(state: State, code: str) -> Pace:
    """Today's latest calls blended with the prior (see the module docstring)."""
    prior = _prior(state, code)
    st = state.stats.get(code)
    today = list(st.pace) if st is not None else []
    calls = len(today) + prior.calls
    mean = (sum(today) + prior.calls * prior.mean) / calls
    if mean <= 0:
        return Pace(0.0, 1.0, calls)
    second = (sum(x * x for x in today)
              + prior.calls * prior.mean * prior.mean * (1 + prior.cv2)) / calls
    return Pace(mean, max(second / (mean * mean) - 1, MIN_CV2), calls)


def gamma_quantile(shape: float, scale: float, z: float) -> float:
    """Quantile of a gamma distribution at the standard-normal quantile ``z``
    (Wilson-Hilferty: good to a few per cent from shape 1 up)."""
    c = 1 / (9 * shape)
    return max(shape * scale * (1 - c + z * math.sqrt(c)) ** 3, 0.0)


def wait_range(p: Pace, counters: int, k: int) -> tuple[float, float]:
    """Quartiles of the time until ``k`` more calls of a queue served by ``counters``."""
    if k <= 0 or p.mean <= 0:
        return 0.0, 0.0
    gap = p.mean / counters
    mean = k * gap
    var = k * gap * gap * p.cv2 * (1 + k / p.calls)
    shape, scale = mean * mean / var, var / mean
    return gamma_quantile(shape, scale, -Z_QUARTILE), gamma_quantile(shape, scale, Z_QUARTILE)


def estimate(state: State, code: str, ahead: int) -> dict[str, int] | None:
    """Wait range in seconds for someone with ``ahead`` people before them; None if no counter
    serving the queue is open."""
    if code not in state.config.services:
        return None
    opened, free = counters_serving(state, code)
    if opened == 0:
        return None
    low, high = wait_range(pace(state, code), opened, ahead + 1 - free)
    return {"low_s": round(low), "high_s": round(high)}
