"""The synthetic fiscal year of ``madoguchi bench stats``: the ward's sites, every business day.

Why generated and not run through edges: 1.5 million tickets through real writers would take
hours; the statistics figures need the events an edge writes, not the edge's speed. So each
site's day is a small discrete-event simulation (one ``random.Random`` per site, seeded: the same
year every run) whose output is what an edge writes for that day: the envelope fields, and the
data fields ``edge.domain.commands`` makes for ``DayOpened`` … ``DayClosed`` (``data.staff`` =
the login on staff actions), serialised as ``Envelope.data_json`` does (sorted keys, compact).
The events fold with ``edge.domain.state.apply`` (``tests/stats/test_stats_bench.py``).

The day: arrivals by hour of the day (``HOUR_WEIGHTS``) within the site's opening hours; the
service by the site's kiosk services (the first ones commoner); channels kiosk, web (services
with web tickets: issued earlier, checked in on arrival, some never come) and reservation
(priority); counters opened by a staff member as the day's load needs (``UTILISATION``), lunch
breaks at larger sites, each counter calling by its services' order as the edge's call-next rule
does; lognormal handling times around the service's ``handling_minutes``; recalls, absences,
cancellations (residents who leave) and transfers to a second service. Business days are the
site's own calendar (``edge.domain.calendar``: weekends, national holidays, the year end).

The year's tickets are shared among the sites by what their counters can serve (counters x
opening hours / configured handling time), scaled to ``FULL_TICKETS``. That is more than the
ward's configured handling times allow at a humane pace, so a day's handling times are shortened
where its counters would otherwise be busier than ``MAX_UTILISATION`` (``Day.scale``: over the
full year median 0.73, 10th percentile 0.52); a few busy days (about 60 of 4,400 site-days)
still run past 21:00, as offices do in the moving season.
"""

from __future__ import annotations

import heapq
import math
import random
from collections import deque
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

from edge.bench.load import BenchError
from edge.config import parse_site_config
from edge.domain.calendar import day as calendar_day
from edge.domain.model import SiteConfig

FY_START, FY_END = date(2025, 4, 1), date(2026, 3, 31)
MIN_TICKETS = 1_500_000  # the issue's floor for the full year
FULL_TICKETS = 1_530_000  # what the full run makes (a margin over the floor)
QUICK_TICKETS_PER_DAY = 350
HOUR_WEIGHTS = {8: 0.6, 9: 1.3, 10: 1.5, 11: 1.3, 12: 0.9, 13: 1.2, 14: 1.3, 15: 1.1, 16: 0.9,
                17: 0.6, 18: 0.4}
WEEKDAY_FACTOR = (1.2, 1.0, 0.95, 1.0, 1.05, 0.8, 0.5)  # Monday … Sunday
MONTH_FACTOR = {3: 1.35, 4: 1.4, 5: 1.05, 12: 0.9, 8: 0.9}  # moving season in March/April
LANGS, LANG_CUM = ("ja", "en", "zh", "ko", "vi"), (0.92, 0.96, 0.98, 0.99, 1.0)
P_WEB, P_RESERVATION, P_NOSHOW, P_CANCEL = 0.10, 0.03, 0.07, 0.02
P_ABSENT, P_RECALL, P_TRANSFER = 0.03, 0.04, 0.05
SIGMA = 0.6  # of the lognormal handling time
UTILISATION = 0.55  # counters opened for this share of busy time over the day
MAX_UTILISATION = 0.6  # handling times shortened where all counters would be busier
MIN_SCALE = 0.1  # beyond that a site's queue does not drain: the rest expires at the close
LATEST = 22 * 3600.0  # the simulation stops (a queue that never drains expires at the close)
DEFAULT_HOURS = ("08:30", "17:15")
OFFSET = "+09:00"
_TZ = timedelta(hours=9)
# event rows: (seq, id, at, type, data JSON)
Row = tuple[int, str, str, str, str]


@dataclass
class SitePlan:
    """One site: its config, its kiosk services (cumulative weights) and its staff logins; the
    ``seq`` and ticket count run on from day to day."""

    index: int
    config: SiteConfig
    toml: str
    kiosk: tuple[str, ...]
    cum: tuple[float, ...]
    staff: tuple[str, ...]
    capacity: float = 0.0  # tickets a day at every counter, handling as configured
    seq: int = 0
    tickets: int = 0
    rng: random.Random = field(default_factory=random.Random)

    @property
    def site(self) -> str:
        return self.config.site


def site_plans(folder: Path, count: int | None = None) -> list[SitePlan]:
    """The sites of ``folder`` (``sites/ward``), else ``ward-01`` … ``ward-18`` as copies of the
    sample main office; the first ``count`` of them."""
    tomls = [p.read_text(encoding="utf-8") for p in sorted(folder.glob("*.toml"))] \
        if folder.is_dir() else []
    if not tomls:
        sample = folder.parent / "nerima-main.toml"
        if not sample.exists():
            raise BenchError(f"no site configs in {folder} nor {sample}")
        text = sample.read_text(encoding="utf-8")
        own = parse_site_config(text).site
        tomls = [text.replace(f'id = "{own}"', f'id = "ward-{i:02d}"', 1) for i in range(1, 19)]
    return [site_plan(i, parse_site_config(toml), toml, 2025_0401 + i)
            for i, toml in enumerate(tomls[:count])]


def site_plan(index: int, cfg: SiteConfig, toml: str, seed: int) -> SitePlan:
    """One site's plan (also the five-year history of ``edge.bench.history_bulk``)."""
    kiosk = tuple(code for code, s in cfg.services.items() if s.kiosk)
    weights = [1.0 / (k + 1) for k in range(len(kiosk))]
    cum = tuple(sum(weights[:k + 1]) for k in range(len(kiosk)))
    pool = max(4, len(cfg.counters) + 3)
    plan = SitePlan(index, cfg, toml, kiosk, cum,
                    tuple(f"st{index:02d}{j:02d}" for j in range(pool)), rng=random.Random(seed))
    start, close = _hours(cfg, 0)
    plan.capacity = len(cfg.counters) * (close - start) / _mean_handling(plan)
    return plan


def business_days(cfg: SiteConfig) -> list[date]:
    """The site's open days of fiscal year 2025 (its calendar and weekly hours)."""
    out, d = [], FY_START
    while d <= FY_END:
        if calendar_day(cfg.calendar, cfg.hours, d).open:
            out.append(d)
        d += timedelta(days=1)
    return out


def schedule(plans: list[SitePlan], quick_days: int | None) -> list[tuple[SitePlan, date, int]]:
    """(site, day, tickets) for the run: the whole fiscal year scaled to ``FULL_TICKETS``, or
    the first ``quick_days`` business days at ``QUICK_TICKETS_PER_DAY``."""
    out: list[tuple[SitePlan, date, float]] = []
    for p in plans:
        days = business_days(p.config)
        if quick_days is not None:
            out += [(p, d, float(QUICK_TICKETS_PER_DAY)) for d in days[:quick_days]]
            continue
        out += [(p, d, p.capacity * WEEKDAY_FACTOR[d.weekday()] * MONTH_FACTOR.get(d.month, 1.0))
                for d in days]
    scale = 1.0 if quick_days is not None else FULL_TICKETS / sum(w for _p, _d, w in out)
    return [(p, d, max(1, round(w * scale))) for p, d, w in out]


def _hm(text: str) -> float:
    h, m = text.split(":")
    return int(h) * 3600.0 + int(m) * 60.0


def _hours(cfg: SiteConfig, weekday: int) -> tuple[float, float]:
    hours = (cfg.hours or {}).get(weekday, DEFAULT_HOURS)
    return _hm(hours[0]), _hm(hours[1])


def _mean_handling(p: SitePlan) -> float:
    """Seconds, the kiosk services' configured handling times weighted as visitors pick them."""
    weights = [b - a for a, b in zip((0.0, *p.cum), p.cum, strict=False)]
    return sum(w * p.config.services[s].handling_s for w, s in zip(weights, p.kiosk,
                                                                    strict=True)) / p.cum[-1]


class _T:
    __slots__ = ("channel", "done", "id", "leave", "number", "service", "stage")

    def __init__(self, tid: str, number: int, service: str, channel: str) -> None:
        self.id, self.number, self.service, self.channel = tid, number, service, channel
        self.stage, self.done, self.leave = 1, False, 0.0


class _C:
    __slots__ = ("busy", "end", "id", "open", "services", "sessions", "staff")

    def __init__(self, cid: str, services: tuple[str, ...], staff: str,
                 sessions: list[tuple[float, float]]) -> None:
        self.id, self.services, self.staff, self.sessions = cid, services, staff, sessions
        self.busy, self.open, self.end = False, False, 0.0


class Day:
    """One site's business day: the simulation and the events it writes (``events``: (time in
    seconds after local midnight, creation order, type, data JSON))."""

    ARRIVE, FREE, OPEN, END = 0, 1, 2, 3

    def __init__(self, plan: SitePlan, d: date, n: int) -> None:
        self.p, self.d, self.n, self.r = plan, d, n, plan.rng
        self.day = d.isoformat()
        self.base_ms = int((datetime(d.year, d.month, d.day, tzinfo=UTC) - _TZ).timestamp()
                           * 1000)
        self.events: list[tuple[float, int, str, str]] = []
        self.heap: list[tuple[float, int, int, object]] = []
        self.k = 0
        self.queues: dict[str, deque[_T]] = {}
        self.firsts: dict[str, deque[_T]] = {}  # reservations: priority
        self.idle: list[_C] = []
        self.live: list[_T] = []
        self.numbers: dict[str, tuple[int, int]] = {}
        self.counters: list[_C] = []
        self.scale = 1.0  # of the configured handling times (``_counters``)

    def emit(self, t: float, kind: str, data: str) -> None:
        self.k += 1
        self.events.append((t, self.k, kind, data))

    def push(self, t: float, what: int, obj: object) -> None:
        self.k += 1
        heapq.heappush(self.heap, (t, self.k, what, obj))

    # --- the day ---------------------------------------------------------------------------

    def run(self) -> list[Row]:
        cfg = self.p.config
        start, close = _hours(cfg, self.d.weekday())
        self.emit(start - 600, "DayOpened", f'{{"day":"{self.day}"}}')
        self._counters(start, close)
        self._arrivals(start, close - 900)
        last = start
        while self.heap:
            t, _k, what, obj = heapq.heappop(self.heap)
            if t > LATEST:
                break
            last = t
            if what == self.ARRIVE:
                assert isinstance(obj, _T)
                self._enqueue(obj)
                for c in self.idle:
                    if obj.service in c.services:
                        self._serve(c, t)
                        break
            elif isinstance(obj, _C):
                self._counter_event(what, obj, t)
        # a call made before LATEST may end after it: counters and the day close after it
        last = max(last, max(t for t, _k, _kind, _data in self.events))
        for c in self.counters:
            if c.open:
                self.emit(last + 60, "CounterClosed", f'{{"counter":"{c.id}","staff":"{c.staff}"}}')
        end = max(close, last) + 300
        expired = ",".join(f'"{i}"' for i in sorted(t.id for t in self.live if not t.done))
        self.emit(end, "DayClosed", f'{{"day":"{self.day}","expired":[{expired}],'
                                    f'"reason":"staff","staff":"{self.p.staff[0]}"}}')
        self.events.sort()
        return self._rows()

    def _counters(self, start: float, close: float) -> None:
        cfg, r = self.p.config, self.r
        span = close - start
        # seconds of work: handling (with transfers and absences), walking up and the pause
        work = self.n * _mean_handling(self.p) * 1.1
        self.scale = min(1.0, max(MIN_SCALE, (MAX_UTILISATION * len(cfg.counters) * span
                                              - self.n * 55) / work))
        need = math.ceil((work * self.scale + self.n * 55) / (span * UTILISATION))
        chosen: list[str] = []
        for svc in self.p.kiosk:
            if not any(svc in cfg.counters[c].services for c in chosen):
                chosen += [cid for cid, c in cfg.counters.items() if svc in c.services][:1]
        chosen += [c for c in cfg.counters if c not in chosen][:max(0, need - len(chosen))]
        off = self.d.toordinal() * 7
        for j, cid in enumerate(chosen):
            staff = self.p.staff[(j + off) % len(self.p.staff)]
            sessions = [(start - 300, close)]
            if len(chosen) >= 4 and j % 2:
                lunch = _hm("11:30") + 1800 * ((j // 2) % 3) + r.uniform(-300, 300)
                sessions = [(start - 300, lunch), (lunch + 3600, close)]
            c = _C(cid, cfg.counters[cid].services, staff, sessions)
            self.counters.append(c)
            self.push(sessions[0][0], self.OPEN, c)

    def _arrivals(self, lo: float, hi: float) -> None:
        p, r = self.p, self.r
        hours = [h for h in range(int(lo // 3600), int(hi // 3600) + 1)
                 if min(hi, h * 3600 + 3600) > max(lo, h * 3600)]
        weights = [HOUR_WEIGHTS.get(h, 0.3) * (min(hi, h * 3600 + 3600) - max(lo, h * 3600))
                   for h in hours]
        picked = r.choices(hours, weights=weights, k=self.n)
        services = r.choices(p.kiosk, cum_weights=p.cum, k=self.n)
        cfg = p.config
        for h, svc in zip(picked, services, strict=True):
            a, b = max(lo, h * 3600.0), min(hi, h * 3600.0 + 3600)
            at = a + r.random() * (b - a)
            x = r.random()
            web = cfg.services[svc].web is not None
            channel = "web" if web and x < P_WEB else "reservation" if x > 1 - P_RESERVATION \
                else "kiosk"
            t = self._issue(svc, channel, max(lo, at - r.uniform(900, 5400))
                            if channel == "web" else at)
            if channel == "web":
                if r.random() < P_NOSHOW:
                    continue
                self.emit(at, "TicketCheckedIn",
                          f'{{"number":{t.number},"place":"checkin","ticket":"{t.id}"}}')
            elif channel == "kiosk" and r.random() < P_CANCEL:
                t.leave = at + r.uniform(300, 2400)
            self.push(at, self.ARRIVE, t)

    def _issue(self, svc: str, channel: str, at: float) -> _T:
        p, r = self.p, self.r
        s = p.config.services[svc]
        number, lap = self.numbers.get(svc, (s.first - 1, 1))
        number += 1
        if number > s.last:
            number, lap = s.first, lap + 1
        self.numbers[svc] = number, lap
        p.tickets += 1
        ms = f"{self.base_ms + int(at * 1000):012x}"
        t = _T(f"{ms[:8]}-{ms[8:]}-7{p.index:03x}-9000-{p.tickets:012x}", number, svc, channel)
        token = f"{(p.tickets * 0x9E3779B97F4A7C15 + p.index) & (1 << 88) - 1:022x}"
        lang = LANGS[next(i for i, c in enumerate(LANG_CUM) if r.random() < c)]
        extra = f',"reservation":"R{p.tickets:09d}"' if channel == "reservation" else ""
        prio = "true" if channel == "reservation" else "false"
        self.emit(at, "TicketIssued",
                  f'{{"channel":"{channel}","lang":"{lang}","lap":{lap},"number":{number},'
                  f'"priority":{prio}{extra},"service":"{svc}","ticket":"{t.id}",'
                  f'"token":"{token}"}}')
        self.live.append(t)
        return t

    def _enqueue(self, t: _T) -> None:
        where = self.firsts if t.channel == "reservation" and t.stage == 1 else self.queues
        q = where.get(t.service)
        if q is None:
            q = where[t.service] = deque()
        q.append(t)

    def _counter_event(self, what: int, c: _C, t: float) -> None:
        if what == self.OPEN:
            c.open, c.end = True, c.sessions[0][1]
            self.emit(t, "CounterOpened", f'{{"counter":"{c.id}","staff":"{c.staff}"}}')
            self.push(c.end, self.END, c)
            self._serve(c, t)
        elif what == self.END:
            if c.open and not c.busy:
                self._close(c, t)
        else:  # FREE
            c.busy = False
            if t < c.end:
                self._serve(c, t)
            elif len(c.sessions) == 1 and self._waiting(c):
                self._serve(c, t)  # the day's last session: serve everyone who came
            else:
                self._close(c, t)

    def _close(self, c: _C, t: float) -> None:
        c.open = False
        if c in self.idle:
            self.idle.remove(c)
        self.emit(t, "CounterClosed", f'{{"counter":"{c.id}","staff":"{c.staff}"}}')
        c.sessions.pop(0)
        if c.sessions:
            self.push(max(c.sessions[0][0], t + 60), self.OPEN, c)

    def _waiting(self, c: _C) -> bool:
        return any(self.firsts.get(s) or self.queues.get(s) for s in c.services)

    def _next(self, c: _C, t: float) -> _T | None:
        for svc in c.services:
            for q in (self.firsts.get(svc), self.queues.get(svc)):
                while q:
                    tk = q.popleft()
                    if tk.leave and tk.leave <= t:
                        tk.done = True
                        self.emit(tk.leave, "TicketCancelled",
                                  f'{{"counter":null,"ticket":"{tk.id}"}}')
                        continue
                    return tk
        return None

    def _serve(self, c: _C, t: float) -> None:
        tk = self._next(c, t)
        if tk is None:
            if c not in self.idle:
                self.idle.append(c)
            return
        if c in self.idle:
            self.idle.remove(c)
        c.busy = True
        r = self.r
        who = f'"counter":"{c.id}","number":{tk.number},"staff":"{c.staff}"'
        self.emit(t, "TicketCalled", f'{{"counter":"{c.id}","number":{tk.number},"reason":"next",'
                                     f'"staff":"{c.staff}","ticket":"{tk.id}"}}')
        x = r.random()
        if x < P_ABSENT:
            self.emit(t + 30, "TicketRecalled", f'{{{who},"ticket":"{tk.id}"}}')
            self.emit(t + 60, "TicketAbsent",
                      f'{{"counter":"{c.id}","staff":"{c.staff}","ticket":"{tk.id}"}}')
            self.push(t + 60 + r.uniform(5, 25), self.FREE, c)
            return
        if x < P_ABSENT + P_RECALL:
            self.emit(t + 25, "TicketRecalled", f'{{{who},"ticket":"{tk.id}"}}')
        mean = self.p.config.services[tk.service].handling_s * self.scale
        end = t + r.uniform(20, 60) + r.lognormvariate(math.log(mean) - SIGMA * SIGMA / 2, SIGMA)
        others = [s for s in self.p.config.services if s != tk.service] if tk.stage == 1 else []
        if others and r.random() < P_TRANSFER:
            to = r.choice(others)
            self.emit(end, "TicketTransferred",
                      f'{{{who},"stage":2,"ticket":"{tk.id}","to_counter":null,'
                      f'"to_service":"{to}"}}')
            tk.service, tk.stage = to, 2
            self.push(end, self.ARRIVE, tk)
        else:
            tk.done = True
            self.emit(end, "TicketFinished",
                      f'{{"counter":"{c.id}","staff":"{c.staff}","ticket":"{tk.id}"}}')
        self.push(end + r.uniform(5, 25), self.FREE, c)

    def _rows(self) -> list[Row]:
        p, day, base, out = self.p, self.day, self.base_ms, []
        tail = f"-7{p.index:03x}-8000-"
        for t, _k, kind, data in self.events:
            p.seq += 1
            whole = int(t)
            ms = f"{base + int(t * 1000):012x}"
            at = (f"{day}T{whole // 3600:02d}:{whole // 60 % 60:02d}:{whole % 60:02d}."
                  f"{int((t - whole) * 1e6):06d}{OFFSET}")
            out.append((p.seq, f"{ms[:8]}-{ms[8:]}{tail}{p.seq:012x}", at, kind, data))
        return out


def day_rows(plan: SitePlan, d: date, n: int) -> list[Row]:
    """The events of ``plan``'s site on ``d`` with ``n`` arrivals (seqs run on from the day
    before: call in date order per site)."""
    return Day(plan, d, n).run()


def envelope_json(site: str, day: str, row: Row) -> str:
    """One row as the edge's envelope JSON (``Envelope.to_dict``), for an MQTT batch."""
    seq, eid, at, kind, data = row
    return (f'{{"v":1,"site":"{site}","seq":{seq},"id":"{eid}","at":"{at}","day":"{day}",'
            f'"type":"{kind}","data":{data}}}')

