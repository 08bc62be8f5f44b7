"""Injected time: the domain never reads the wall clock, so tests are deterministic."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Protocol
from zoneinfo import ZoneInfo


class Clock(Protocol):
    def now(self) -> datetime:
        """An aware datetime in the site's time zone."""
        ...


class SystemClock:
    def __init__(self, tz: str = "Asia/Tokyo") -> None:
        self.tz = ZoneInfo(tz)

    def now(self) -> datetime:
        return datetime.now(self.tz)


class ManualClock:
    """A clock that moves only when told (tests, simulations, benchmarks)."""

    def __init__(self, start: datetime) -> None:
        if start.tzinfo is None:
            raise ValueError("ManualClock needs an aware datetime")
        self._now = start

    def now(self) -> datetime:
        return self._now

    def advance(self, seconds: float) -> None:
        self._now += timedelta(seconds=seconds)

    def set(self, when: datetime) -> None:
        self._now = when


class SimulatedClock:
    """Starts at ``start`` and then runs with a real monotonic clock, ``rate`` times as fast.

    Why: ``madoguchi demo --at 10:30`` lets a newcomer try opening hours, web tickets and menus
    at any real time of day; the sites and the hub share one instance so they agree on "now".
    ``monotonic`` is injected so the clock itself is testable without sleeping.
    """

    def __init__(self, start: datetime, rate: float = 1.0,
                 monotonic: Callable[[], float] = time.monotonic) -> None:
        if start.tzinfo is None:
            raise ValueError("SimulatedClock needs an aware datetime")
        if rate <= 0:
            raise ValueError("SimulatedClock needs a positive rate")
        self.start, self.rate = start, rate
        self._monotonic = monotonic
        self._t0 = monotonic()

    def now(self) -> datetime:
        return self.start + timedelta(seconds=(self._monotonic() - self._t0) * self.rate)
