"""Per-key rate limits (token buckets) for resident-facing routes: per client address, per contact.

In memory and per process: a limit is a defence against floods and guessing, not an account, so
losing it on restart is acceptable. Memory is bounded: beyond ``max_keys`` the least recently
used keys are forgotten (a forgotten key starts with a full bucket again).
"""

from __future__ import annotations

import time
from collections import OrderedDict
from collections.abc import Callable

from aiohttp import web


class RateLimiter:
    """``rate`` tokens per second refill a bucket of ``burst``; each request costs ``cost``."""

    def __init__(self, rate: float, burst: float, *, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if rate <= 0 or burst < 1:
            raise ValueError("rate must be > 0 and burst >= 1")
        self.rate, self.burst, self.max_keys, self.clock = rate, burst, max_keys, clock
        self._buckets: OrderedDict[str, tuple[float, float]] = OrderedDict()  # key -> (tokens, t)

    def _level(self, key: str, now: float) -> float:
        tokens, then = self._buckets.get(key, (self.burst, now))
        return min(self.burst, tokens + (now - then) * self.rate)

    def allow(self, key: str, cost: float = 1.0) -> bool:
        """Take ``cost`` tokens if there are enough; False (nothing taken) otherwise."""
        now = self.clock()
        tokens = self._level(key, now)
        ok = tokens >= cost
        self._buckets[key] = (tokens - cost if ok else tokens, now)
        self._buckets.move_to_end(key)
        while len(self._buckets) > self.max_keys:
            self._buckets.popitem(last=False)
        return ok

    def retry_after(self, key: str, cost: float = 1.0) -> float:
        """Seconds until ``allow(key, cost)`` would succeed."""
        missing = cost - self._level(key, self.clock())
        return max(0.0, missing / self.rate)


def client_ip(request: web.Request, trust_proxy: bool = False) -> str:
    """The client's address; behind a reverse proxy (``trust_proxy``) the first
    ``X-Forwarded-For`` entry, which only a trusted proxy may set."""
    if trust_proxy:
        forwarded = request.headers.get("X-Forwarded-For", "")
        first = forwarded.split(",")[0].strip()
        if first:
            return first
    return request.remote or "unknown"
