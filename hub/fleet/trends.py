"""What one status cannot tell: the clock offset and whether the outbox keeps growing (pure).

Clock offset. An edge cannot know its own clock error, so the hub estimates it: each status
carries the edge's ``at`` (its clock when it built the status); the hub notes the time it is
told of that status (``received``, its own clock). ``received - at`` is the true offset (hub
minus edge) plus the delivery delay (MQTT, the ingest group, the listener's turn), and that
delay is never negative. So the smallest of the recent samples is the best estimate (the
minimum filter NTP uses), biased high by the shortest delay seen: tens of milliseconds on a
LAN, at most a few seconds under load, against thresholds of tens of seconds. Two samples at
least, one status apart: the retained status the hub reads at its start may be minutes old.

Outbox trend. The outbox (events not yet acknowledged) is 0 or a few on a working line; it
grows when nothing reaches the hub. It counts as growing for as long as every sample in a row
was above 0 and the latest is above the first of that run.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field

CLOCK_SAMPLES = 5  # the last statuses the minimum is taken over
CLOCK_MAX_AGE_S = 900.0  # samples older than this are dropped (a clock can be corrected)


@dataclass(slots=True)
class ClockOffset:
    samples: deque[tuple[float, float, str]] = field(default_factory=deque)  # received, offset, at

    def add(self, received: float, edge_at: float, at_text: str) -> None:
        """One status; the same ``at`` told twice (re-delivered, retained) is one sample."""
        if self.samples and self.samples[-1][2] == at_text:
            return
        self.samples.append((received, received - edge_at, at_text))
        while len(self.samples) > CLOCK_SAMPLES:
            self.samples.popleft()

    def estimate(self, now: float) -> float | None:
        while self.samples and self.samples[0][0] < now - CLOCK_MAX_AGE_S:
            self.samples.popleft()
        if len(self.samples) < 2:
            return None
        return min(s[1] for s in self.samples)


@dataclass(slots=True)
class OutboxTrend:
    start: float | None = None  # when the current run of non-empty samples began
    first: int = 0
    last: int = 0

    def add(self, at: float, depth: int) -> None:
        if depth <= 0:
            self.start = None
        elif self.start is None:
            self.start, self.first = at, depth
        self.last = depth

    def growing_s(self, now: float) -> float:
        """For how long the outbox has been non-empty, if it grew over that time; else 0."""
        if self.start is None or self.last <= self.first:
            return 0.0
        return max(0.0, now - self.start)
