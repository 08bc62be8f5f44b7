"""Rollup cells from a site's events: the one definition of every statistics figure (pure).

A ``Tally`` follows one site's events in seq order (each exactly once: ingest hands it only the
events that just became contiguous, in the transaction that stores them) and adds deltas to
``Cells``; ``hub.stats.store`` adds the cells to ``stats_rollup``. It needs no site config, so a
site without one is counted too. Times are the edge's; hours are Asia/Tokyo; the day is the
event's business day.

Measures and their dimensions (a cell's ``n`` / ``total`` seconds / ``max_s``):

============ ========================================================= =========================
measure      dimensions                                                value
============ ========================================================= =========================
issued       hour of issue, service, channel                           tickets
wait1        hour of the first call, service, counter, staff who called n, seconds issue → first
                                                                        call (stage 1), max
wait2        the same for stages 2+ (Q15's second wait)                n, seconds transfer →
                                                                        first call there, max
wait1_hist   service, bucket (``bucket``)                               tickets (for medians)
wait2_hist   service, bucket                                           tickets
handling     hour of the first call, service, counter, staff who called n, seconds first call →
                                                                        finished/transferred
served       service, counter, staff who called                        tickets finished
recall       service, counter, staff (the event's)                     calls again: a recall,
                                                                        or a new call of a
                                                                        ticket already called at
                                                                        this stage
absent       service, counter, staff, channel                          tickets marked absent
cancel       service, channel                                          tickets cancelled
transfer     service (from), counter, staff                            transfers
expired      service, channel                                          tickets still live when
                                                                        the day closed
noshow       service, channel (web, reservation)                       tickets of those
                                                                        channels never checked
                                                                        in nor called by then
checkin      service, channel                                          first check-ins
counter_open counter, staff who opened it                              n sessions, seconds open
============ ========================================================= =========================

A day closes at ``DayClosed``, or at the next ``DayOpened`` if no ``DayClosed`` came (then at
the last event time of the old day): open counters are credited up to then, live tickets
counted ``expired`` (and ``noshow`` where that applies). A negative span (a clock stepped
back) counts as 0 s. Events about unknown tickets are not counted (the fold quarantines them).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from zoneinfo import ZoneInfo

from edge.protocol import Envelope

TZ = ZoneInfo("Asia/Tokyo")
NO_HOUR = -1
NO_BUCKET = -1
SHOWING_CHANNELS = frozenset({"web", "reservation"})  # tickets that must check in
MEASURES = ("issued", "wait1", "wait2", "wait1_hist", "wait2_hist", "handling", "served",
            "recall", "absent", "cancel", "transfer", "expired", "noshow", "checkin",
            "counter_open")

# (day, measure, hour, service, counter, staff, channel, bucket)
Key = tuple[str, str, int, str, str, str, str, int]


def bucket(seconds: float) -> int:
    """A wait's histogram bucket: whole minutes below 60, 5 minutes to 180, then one bucket."""
    minutes = int(max(seconds, 0.0) // 60)
    if minutes < 60:
        return minutes
    if minutes < 180:
        return 60 + (minutes - 60) // 5
    return 84


def bucket_bounds(b: int) -> tuple[float, float]:
    """The seconds a bucket covers, [low, high) (the last one is open: high = low + 1 h)."""
    if b < 60:
        return b * 60.0, (b + 1) * 60.0
    if b < 84:
        low = (60 + (b - 60) * 5) * 60.0
        return low, low + 300.0
    return 180 * 60.0, 240 * 60.0


@dataclass(slots=True)
class Cell:
    n: int = 0
    total: float = 0.0
    max_s: float = 0.0

    def add(self, n: int, seconds: float = 0.0) -> None:
        self.n += n
        self.total += seconds
        self.max_s = max(self.max_s, seconds)

    def merge(self, other: Cell) -> None:
        self.n += other.n
        self.total += other.total
        self.max_s = max(self.max_s, other.max_s)


Cells = dict[Key, Cell]


def add(cells: Cells, key: Key, n: int = 1, seconds: float = 0.0) -> None:
    cell = cells.get(key)
    if cell is None:
        cell = cells[key] = Cell()
    cell.add(n, seconds)


@dataclass(slots=True)
class _Ticket:
    day: str
    service: str
    channel: str
    stage: int = 1
    queued_at: datetime | None = None
    called_at: datetime | None = None  # first call at this stage
    caller: str = ""  # staff of the first call at this stage
    counter: str = ""  # counter of the first call at this stage
    call_hour: int = NO_HOUR
    ever_called: bool = False
    checked_in: bool = False
    ended: bool = False


@dataclass(slots=True)
class _Counter:
    since: datetime
    staff: str
    day: str


def _hour(at: datetime) -> int:
    return at.astimezone(TZ).hour


def _span(a: datetime, b: datetime) -> float:
    return max((b - a).total_seconds(), 0.0)


@dataclass
class Tally:
    """One site's open tickets and counters for the current day; adds to ``cells``."""

    tickets: dict[str, _Ticket] = field(default_factory=dict)
    counters: dict[str, _Counter] = field(default_factory=dict)
    day: str | None = None
    day_open: bool = False
    last_at: datetime | None = None

    def feed(self, envs: Iterable[Envelope], cells: Cells | None) -> None:
        """Follow ``envs`` (in seq order); count into ``cells`` (None: follow silently, as when
        the tally is rebuilt from the day's events that were counted before)."""
        sink: Cells = {} if cells is None else cells
        for ev in envs:
            self._one(ev, sink)

    def _close(self, at: datetime, cells: Cells) -> None:
        for cid, c in self.counters.items():
            add(cells, (c.day, "counter_open", NO_HOUR, "", cid, c.staff, "", NO_BUCKET),
                1, _span(c.since, at))
        self.counters.clear()
        for t in self.tickets.values():
            if t.ended:
                continue
            t.ended = True
            add(cells, (t.day, "expired", NO_HOUR, t.service, "", "", t.channel, NO_BUCKET))
            if t.channel in SHOWING_CHANNELS and not t.checked_in and not t.ever_called:
                add(cells, (t.day, "noshow", NO_HOUR, t.service, "", "", t.channel, NO_BUCKET))
        self.day_open = False

    def _one(self, ev: Envelope, cells: Cells) -> None:
        at = datetime.fromisoformat(ev.at)
        d = ev.data
        kind = ev.type
        staff = str(d.get("staff") or "")
        if kind == "DayOpened":
            if self.day_open and self.last_at is not None:
                self._close(self.last_at, cells)
            self.tickets.clear()
            self.counters.clear()
            self.day, self.day_open = str(d["day"]), True
        elif kind == "DayClosed":
            if self.day_open:
                self._close(at, cells)
        elif kind == "CounterOpened":
            cid = str(d["counter"])
            if cid not in self.counters:
                self.counters[cid] = _Counter(at, staff, ev.day)
        elif kind == "CounterClosed":
            c = self.counters.pop(str(d["counter"]), None)
            if c is not None:
                add(cells, (c.day, "counter_open", NO_HOUR, "", str(d["counter"]), c.staff, "",
                            NO_BUCKET), 1, _span(c.since, at))
        elif kind == "TicketIssued":
            t = _Ticket(ev.day, str(d["service"]), str(d["channel"]), queued_at=at)
            self.tickets[str(d["ticket"])] = t
            add(cells, (t.day, "issued", _hour(at), t.service, "", "", t.channel, NO_BUCKET))
        elif kind.startswith("Ticket"):
            known = self.tickets.get(str(d.get("ticket")))
            if known is not None:
                self._ticket(known, kind, d, at, staff, cells)
        self.last_at = at

    def _ticket(self, t: _Ticket, kind: str, d: dict[str, object], at: datetime, staff: str,
                cells: Cells) -> None:
        counter = str(d.get("counter") or "")
        if kind == "TicketCalled":
            if t.called_at is None:
                wait = _span(t.queued_at or at, at)
                stage = "wait1" if t.stage == 1 else "wait2"
                t.called_at, t.caller, t.counter, t.call_hour = at, staff, counter, _hour(at)
                t.ever_called = True
                add(cells, (t.day, stage, t.call_hour, t.service, counter, staff, "", NO_BUCKET),
                    1, wait)
                add(cells, (t.day, stage + "_hist", NO_HOUR, t.service, "", "", "",
                            bucket(wait)))
            else:
                add(cells, (t.day, "recall", NO_HOUR, t.service, counter, staff, "", NO_BUCKET))
        elif kind == "TicketRecalled":
            add(cells, (t.day, "recall", NO_HOUR, t.service, counter, staff, "", NO_BUCKET))
        elif kind == "TicketCheckedIn":
            if not t.checked_in:
                t.checked_in = True
                add(cells, (t.day, "checkin", NO_HOUR, t.service, "", "", t.channel, NO_BUCKET))
        elif kind == "TicketAbsent":
            add(cells, (t.day, "absent", NO_HOUR, t.service, counter, staff, t.channel,
                        NO_BUCKET))
        elif kind == "TicketCancelled" and not t.ended:
            t.ended = True
            add(cells, (t.day, "cancel", NO_HOUR, t.service, "", "", t.channel, NO_BUCKET))
        elif kind in ("TicketFinished", "TicketTransferred") and not t.ended:
            self._handled(t, at, cells, finished=kind == "TicketFinished")
            if kind == "TicketFinished":
                t.ended = True
                return
            add(cells, (t.day, "transfer", NO_HOUR, t.service, counter or t.counter, staff, "",
                        NO_BUCKET))
            t.service, t.stage, t.queued_at = str(d["to_service"]), t.stage + 1, at
            t.called_at, t.caller, t.counter, t.call_hour = None, "", "", NO_HOUR

    def _handled(self, t: _Ticket, at: datetime, cells: Cells, *, finished: bool) -> None:
        if t.called_at is None:
            return
        add(cells, (t.day, "handling", t.call_hour, t.service, t.counter, t.caller, "",
                    NO_BUCKET), 1, _span(t.called_at, at))
        if finished:
            add(cells, (t.day, "served", NO_HOUR, t.service, t.counter, t.caller, "",
                        NO_BUCKET))
