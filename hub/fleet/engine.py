"""Findings over time -> incidents: opened once, recovered once, never a storm (pure).

Why hysteresis and not "alert when a rule holds": device health and presence flap (a printer's
paper sensor at the edge of a roll, a display on a loose cable, a wobbly line), and every edge
of a flapping signal must not become an e-mail. Per key (site, rule, subject):

- an incident **opens** when the finding has held for its ``hold_s`` without a break, or when
  it has started ``flap_rises`` times within ``flap_window_s`` (a flapping fault is a fault,
  even if no single spell lasts ``hold_s``);
- an open incident **recovers** only after the finding has been absent for ``clear_s``
  without a break; while open, any return of the finding restarts that wait.

So any sequence of toggles gives alternating opens and recoveries, and toggles whose gaps are
all shorter than ``clear_s`` give at most one open (tests/hub/test_fleet_engine.py, hypothesis).
Time is passed in (``now``, seconds as floats or datetimes' timestamps): nothing here reads a
clock.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any, Literal

from hub.fleet.rules import Finding, Key


@dataclass(frozen=True, slots=True)
class Timing:
    clear_s: float = 120.0  # absent this long before an open incident recovers
    flap_rises: int = 4  # this many starts ...
    flap_window_s: float = 600.0  # ... within this window open an incident at once


@dataclass(frozen=True, slots=True)
class Transition:
    kind: Literal["opened", "recovered"]
    key: Key
    at: float
    detail: dict[str, Any]
    flapping: bool = False


@dataclass(slots=True)
class _Track:
    active: bool
    since: float  # when ``active`` last changed
    opened: bool = False
    opened_at: float | None = None
    rises: deque[float] = field(default_factory=deque)
    detail: dict[str, Any] = field(default_factory=dict)


class Engine:
    """Feed ``step(now, findings)`` every tick with everything that holds now (keys missing
    from ``findings`` do not hold). ``now`` must not go backwards (a step back is clamped)."""

    def __init__(self, timing: Timing | None = None) -> None:
        self.timing = timing or Timing()
        self._tracks: dict[Key, _Track] = {}
        self._last = float("-inf")

    def restore(self, key: Key, opened_at: float, detail: dict[str, Any] | None = None) -> None:
        """An incident still open in the database (a hub restart): it is not opened again,
        and recovers as any other once its finding has been absent for ``clear_s``."""
        self._tracks[key] = _Track(True, opened_at, True, opened_at, detail=dict(detail or {}))

    def is_open(self, key: Key) -> bool:
        track = self._tracks.get(key)
        return track is not None and track.opened

    def open_keys(self) -> list[Key]:
        return [k for k, t in self._tracks.items() if t.opened]

    def step(self, now: float, found: Iterable[Finding]) -> list[Transition]:
        now = max(now, self._last)
        self._last = now
        t = self.timing
        holding = {f.key: f for f in found}
        out: list[Transition] = []
        for key, f in holding.items():
            track = self._tracks.get(key)
            if track is None:
                track = self._tracks[key] = _Track(True, now)
                track.rises.append(now)
            elif not track.active:
                track.active, track.since = True, now
                track.rises.append(now)
            track.detail = f.detail
            while track.rises and track.rises[0] <= now - t.flap_window_s:
                track.rises.popleft()
            if track.opened:
                continue
            flapping = len(track.rises) >= t.flap_rises
            if now - track.since >= f.hold_s or flapping:
                track.opened, track.opened_at = True, now
                out.append(Transition("opened", key, now, dict(f.detail),
                                      flapping and now - track.since < f.hold_s))
        for key in list(self._tracks):
            if key in holding:
                continue
            track = self._tracks[key]
            if track.active:
                track.active, track.since = False, now
            while track.rises and track.rises[0] <= now - t.flap_window_s:
                track.rises.popleft()
            if track.opened and now - track.since >= t.clear_s:
                track.opened, track.opened_at = False, None
                track.rises.clear()  # a new episode starts counting afresh
                out.append(Transition("recovered", key, now, dict(track.detail)))
            if not track.opened and not track.rises:
                del self._tracks[key]  # nothing left to remember
        return out
