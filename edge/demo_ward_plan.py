"""What ``madoguchi demo --ward`` simulates at each site, and what the run costs: pure logic.

Why lighter than the three-site demo: eighteen sites, their hub and the broker share one Python
process on a 2-core mini-PC, so each site gets at most ``WARD_OPERATORS`` simulated counters
(chosen to cover as many kiosk services as possible), visitors at 80 % of what those counters can
handle and only for the services they serve (no queue grows without end), operators that call,
serve and finish (no absences or transfers), no printed-ticket previews and no voice. The rest
of each site's counters stay closed for the user to open.

The cost (``CostMeter``) is the process's own CPU time over wall time (every thread: the hub's
SQLite thread, the broker, all the sites) and its resident memory, read from ``/proc``.
"""

from __future__ import annotations

import resource
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from edge.domain.model import SiteConfig

WARD_OPERATORS = 3  # simulated counters per site at most
IDLE_S = 1.0  # an operator with nobody waiting asks again after this (real) time
# arrivals as a share of what the simulated counters handle: below the three-site demo's 0.9, as
# an idle operator's second before asking again is a third of a simulated minute at --speed 20
UTILISATION = 0.8


class WardError(Exception):
    """The ward folder cannot be used (missing, or holding no site TOML)."""


def ward_paths(folder: Path) -> list[Path]:
    """Every site TOML of the folder, in name order (the first is listed first by the hub)."""
    if not folder.is_dir():
        raise WardError(f"{folder}: no such folder / フォルダがありません")
    paths = sorted(folder.glob("*.toml"))
    if not paths:
        raise WardError(f"{folder}: no site *.toml / サイト設定 (*.toml) がありません")
    return paths


@dataclass(frozen=True)
class SitePlan:
    """One site's share of the ward demo."""

    counters: tuple[str, ...]  # the counters the simulation operates
    services: tuple[str, ...]  # kiosk services those counters serve: what visitors ask for
    arrivals_per_sim_min: float  # the whole site's arrivals per simulated minute


def _kiosk_services(config: SiteConfig) -> set[str]:
    return {code for code, s in config.services.items() if s.kiosk}


def ward_plan(config: SiteConfig, user: Sequence[str] = (), cap: int = WARD_OPERATORS) -> SitePlan:
    """Up to ``cap`` counters, none of ``user`` (left to the person trying the demo) unless the
    site has no other: each pick is the counter adding the most kiosk services not yet covered
    (ties: config order), so the few simulated counters move as many queues as they can."""
    kiosk = _kiosk_services(config)
    pool = [cid for cid in config.counters if cid not in user] or list(config.counters)
    pool = [cid for cid in pool if kiosk & set(config.counters[cid].services)]
    chosen: list[str] = []
    covered: set[str] = set()
    while pool and len(chosen) < cap:
        best = max(pool, key=lambda cid: len((kiosk & set(config.counters[cid].services))
                                             - covered))
        chosen.append(best)
        covered |= kiosk & set(config.counters[best].services)
        pool.remove(best)
    services = tuple(code for code in config.services if code in covered)
    if not services:
        return SitePlan(tuple(chosen), (), 0.0)
    mean_min = sum(config.services[s].handling_s for s in services) / len(services) / 60.0
    return SitePlan(tuple(chosen), services, UTILISATION * len(chosen) / max(mean_min, 0.1))


def kiosks_for(config: SiteConfig) -> dict[str, tuple[str | None, ...]]:
    """service -> the printing kiosks whose menus offer it (a kiosk shared by two sections
    prints only their numbers); every printing kiosk for a service no menu names, and
    ``(None,)`` where no kiosk prints."""
    printing = tuple(dict.fromkeys(d.kiosk for d in config.devices
                                   if d.kind == "printer" and d.kiosk))
    out: dict[str, tuple[str | None, ...]] = {}
    for code in config.services:
        offered = tuple(k for k in printing
                        if any(code in m.services for m in config.menus_for(k).values()))
        out[code] = offered or printing or (None,)
    return out


def site_ports(first: int, n: int, taken: Iterable[int]) -> list[int]:
    """``n`` ports from ``first`` upwards, skipping ``taken`` (the hub's port is among the
    first eighteen after the default 8080)."""
    skip = set(taken)
    out: list[int] = []
    port = first
    while len(out) < n:
        if port not in skip:
            out.append(port)
        port += 1
    return out


# --- the cost ------------------------------------------------------------------------------------

def rss_mb() -> float:
    """The resident memory of this process now (VmRSS), or its peak where /proc is missing."""
    try:
        for line in Path("/proc/self/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    except OSError:
        pass
    return peak_rss_mb()


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


@dataclass(frozen=True)
class Cost:
    cpu_pct: float  # of one core: 100 = one core busy all the time
    rss_mb: float
    peak_rss_mb: float
    seconds: float

    def text(self) -> str:
        return (f"CPU {self.cpu_pct:.0f}% (1 core = 100%)  RSS {self.rss_mb:.0f} MB "
                f"(peak {self.peak_rss_mb:.0f} MB)")


class CostMeter:
    """CPU share and memory since the last ``sample`` and since ``start``."""

    def __init__(self, wall: Callable[[], float] = time.monotonic,
                 cpu: Callable[[], float] = time.process_time,
                 rss: Callable[[], float] = rss_mb,
                 peak: Callable[[], float] = peak_rss_mb) -> None:
        self._wall, self._cpu, self._rss, self._peak = wall, cpu, rss, peak
        self.start = self.last = (wall(), cpu())
        self.rss_max = 0.0
        self.final: Cost | None = None  # the whole run, taken by ``stop`` before shutting down

    @staticmethod
    def _pct(a: tuple[float, float], b: tuple[float, float]) -> float:
        wall = b[0] - a[0]
        return 100.0 * (b[1] - a[1]) / wall if wall > 0 else 0.0

    def sample(self) -> Cost:
        """Since the previous sample (the live line)."""
        now = (self._wall(), self._cpu())
        rss = self._rss()
        self.rss_max = max(self.rss_max, rss)
        cost = Cost(self._pct(self.last, now), rss, max(self._peak(), self.rss_max),
                    now[0] - self.last[0])
        self.last = now
        return cost

    def reset(self) -> None:
        """Start the whole-run figure here (after start-up, which costs more than running)."""
        self.start = self.last = (self._wall(), self._cpu())

    def stop(self) -> Cost:
        """Freeze the whole-run figure (shutting down is not part of running)."""
        if self.final is None:
            self.final = self.total()
        return self.final

    def total(self) -> Cost:
        """Since ``start`` (or the last ``reset``)."""
        now = (self._wall(), self._cpu())
        rss = self._rss()
        self.rss_max = max(self.rss_max, rss)
        return Cost(self._pct(self.start, now), rss, max(self._peak(), self.rss_max),
                    now[0] - self.start[0])
