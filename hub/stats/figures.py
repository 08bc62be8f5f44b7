"""Figures from summed rollup cells (pure): how each number of a report row is derived from its
cells' counts, seconds, maxima and wait histograms. ``report`` sums the cells; this turns the
sums into figures, so the definitions sit in one short place (what the cells count is
``hub.stats.rollup``'s docstring).
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from functools import lru_cache

from hub.stats.rollup import bucket_bounds

CHANNELS = ("kiosk", "web", "reservation", "staff")
# figure -> the measures it needs (all must apply to the scope, else the figure is None)
FIGURES: dict[str, tuple[str, ...]] = {
    "issued": ("issued",), **{f"issued_{c}": ("issued",) for c in (*CHANNELS, "other")},
    "called": ("wait1",), "wait1_mean": ("wait1",), "wait1_median": ("wait1_hist", "wait1"),
    "wait1_p90": ("wait1_hist", "wait1"), "wait1_max": ("wait1",),
    "called2": ("wait2",), "wait2_mean": ("wait2",), "wait2_median": ("wait2_hist", "wait2"),
    "wait2_p90": ("wait2_hist", "wait2"), "wait2_max": ("wait2",),
    "handled": ("handling",), "handling_mean": ("handling",), "served": ("served",),
    "absent": ("absent",), "recall": ("recall",), "cancel": ("cancel",),
    "transfer": ("transfer",), "expired": ("expired",), "noshow": ("noshow",),
    "checkin": ("checkin",), "open_hours": ("counter_open",),
    "utilisation": ("handling", "counter_open"), "res_booked": ("reservations",),
    "res_used": ("reservations", "issued"), "res_noshow": ("reservations", "issued"),
    "web_views": ("web",),
}
Figures = dict[str, float | None]


@dataclass
class Acc:
    """One row's cells, summed: per measure n/total/max, the issued per channel, the wait
    histograms, reservations booked (and of those, slots already over) and web views."""

    n: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    total: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    max_s: dict[str, float] = field(default_factory=lambda: defaultdict(float))
    channels: dict[str, int] = field(default_factory=lambda: defaultdict(int))
    hist: dict[str, dict[int, int]] = field(
        default_factory=lambda: defaultdict(lambda: defaultdict(int)))
    booked: int = 0
    booked_over: int = 0

    def merge(self, o: Acc) -> None:
        for m, v in o.n.items():
            self.n[m] += v
        for m, t in o.total.items():
            self.total[m] += t
        for m, x in o.max_s.items():
            self.max_s[m] = max(self.max_s[m], x)
        for c, v in o.channels.items():
            self.channels[c] += v
        for m, h in o.hist.items():
            for b, v in h.items():
                self.hist[m][b] += v
        self.booked += o.booked
        self.booked_over += o.booked_over


def percentile(hist: dict[int, int], q: float, cap: float | None = None) -> float | None:
    """The q-quantile of a wait histogram, interpolated linearly within its bucket, and never
    above ``cap`` (the largest wait seen: the last bucket is open-ended)."""
    count = sum(hist.values())
    if count <= 0:
        return None
    target, seen = q * count, 0
    value = bucket_bounds(max(hist))[1]
    for b in sorted(hist):
        c = hist[b]
        if c <= 0:
            continue
        if seen + c >= target:
            low, high = bucket_bounds(b)
            value = low + (high - low) * (target - seen) / c
            break
        seen += c
    return value if cap is None else min(value, cap)


def _mean(acc: Acc, m: str) -> float | None:
    n = acc.n.get(m, 0)
    return acc.total[m] / n if n else None


@lru_cache(maxsize=64)
def _applying(ok: frozenset[str]) -> frozenset[str]:
    return frozenset(f for f, need in FIGURES.items() if all(m in ok for m in need))


def figures(acc: Acc, ok: set[str]) -> Figures:
    """Every figure of ``FIGURES`` from one row's sums; ``ok``: the measures that apply."""
    applying = _applying(frozenset(ok))
    n = acc.n
    used = acc.channels.get("reservation", 0)
    values: dict[str, float | None] = {
        "issued": n.get("issued", 0),
        **{f"issued_{c}": acc.channels.get(c, 0) for c in CHANNELS},
        "issued_other": sum(v for c, v in acc.channels.items() if c not in CHANNELS),
        "handled": n.get("handling", 0), "handling_mean": _mean(acc, "handling"),
        "open_hours": acc.total.get("counter_open", 0.0) / 3600.0,
        "utilisation": acc.total["handling"] / acc.total["counter_open"]
        if acc.total.get("counter_open") else None,
        "res_booked": acc.booked, "res_used": used,
        "res_noshow": max(acc.booked_over - used, 0), "web_views": n.get("web", 0),
    }
    for stage in ("1", "2"):
        w = f"wait{stage}"
        cap = acc.max_s.get(w) if n.get(w) else None
        values.update({
            "called" if stage == "1" else "called2": n.get(w, 0), f"{w}_mean": _mean(acc, w),
            f"{w}_median": percentile(acc.hist.get(f"{w}_hist", {}), 0.5, cap),
            f"{w}_p90": percentile(acc.hist.get(f"{w}_hist", {}), 0.9, cap),
            f"{w}_max": cap})
    for m in ("served", "absent", "recall", "cancel", "transfer", "expired", "noshow",
              "checkin"):
        values[m] = n.get(m, 0)
    return {f: (values[f] if f in applying else None) for f in FIGURES}
