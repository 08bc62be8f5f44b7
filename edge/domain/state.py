"""Queue state and the one fold ``apply(state, event)``.

Live operation and a rebuild from the event log both go through ``apply``, which is why a rebuild
gives exactly the live projections. ``apply`` never refuses: events are facts already decided.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from edge.domain.model import SiteConfig
from edge.protocol import Envelope

TicketState = Literal["waiting", "called", "held", "absent", "finished", "cancelled", "expired"]
LIVE_STATES: frozenset[str] = frozenset({"waiting", "called", "held", "absent"})
TICKET_STATES: tuple[str, ...] = (
    "waiting", "called", "held", "absent", "finished", "cancelled", "expired",
)


@dataclass(slots=True)
class Ticket:
    """A visitor's ticket. It keeps its number across stages (Q11); ``stage`` counts receptions."""

    id: str
    day: str
    number: int
    lap: int  # how many times the service's range wrapped before this number (1 = first pass)
    origin_service: str
    service: str  # the queue it is in now
    stage: int
    state: str
    channel: str
    lang: str
    priority: bool
    token: str
    issued_at: datetime
    queued_at: datetime  # arrival at the current stage
    queue_seq: int  # seq of the event that queued it: the FIFO order
    counter: str | None = None  # counter that called/holds/marked it absent
    target_counter: str | None = None  # transferred to a named counter
    called_at: datetime | None = None  # first call at this stage
    finished_at: datetime | None = None
    calls: int = 0  # calls at this stage, recalls included
    checked_in_at: datetime | None = None  # web/reservation tickets scanned at the kiosk
    # web tickets not checked in (edge/domain/web.py); in memory only, folded from the log:
    deferred_at: datetime | None = None  # its turn first came before its check-in
    passed: bool = False  # someone behind it in its queue was called while it was deferred
    absent_reason: str | None = None  # "not_checked_in": marked by call-next after the grace

    @property
    def live(self) -> bool:
        return self.state in LIVE_STATES

    @property
    def queue_key(self) -> tuple[bool, int]:
        """Order within one queue: priority tickets first, then the oldest arrival."""
        return (not self.priority, self.queue_seq)

    def to_row(self) -> dict[str, Any]:
        """The projection row (also what the rebuild comparison reads)."""
        return {
            "id": self.id,
            "day": self.day,
            "number": self.number,
            "lap": self.lap,
            "origin_service": self.origin_service,
            "service": self.service,
            "stage": self.stage,
            "state": self.state,
            "channel": self.channel,
            "lang": self.lang,
            "priority": int(self.priority),
            "token": self.token,
            "issued_at": self.issued_at.isoformat(),
            "queued_at": self.queued_at.isoformat(),
            "queue_seq": self.queue_seq,
            "counter": self.counter,
            "target_counter": self.target_counter,
            "called_at": self.called_at.isoformat() if self.called_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "calls": self.calls,
            "checked_in_at": self.checked_in_at.isoformat() if self.checked_in_at else None,
        }


@dataclass(slots=True)
class CounterState:
    id: str
    open: bool = False
    current: str | None = None  # ticket id being called/served

    def to_row(self) -> dict[str, Any]:
        return {"id": self.id, "open": int(self.open), "current": self.current}


@dataclass(slots=True)
class ServiceDay:
    """Numbering state of one service for the day (Q1: restarts every business day)."""

    last_number: int
    lap: int
    issued: int = 0


PACE_WINDOW = 100  # the wait estimate follows the pace of this many latest calls of a queue
HISTORY_CAP = 200  # calls a (service, weekday, hour) history counts at most: old days fade


@dataclass(slots=True)
class Moments:
    """Count, sum and sum of squares of pace samples: enough for a mean and a spread."""

    n: float = 0.0
    total: float = 0.0
    squares: float = 0.0

    def add(self, x: float) -> None:
        self.n += 1
        self.total += x
        self.squares += x * x


@dataclass(slots=True)
class ServiceStats:
    """Today's figures for one service (S1); waits and handling times in seconds.

    The wait estimate (edge/domain/estimate.py) reads the queue's *pace*: for each first call
    made while the queue was waiting on busy counters, the counter-seconds it took (seconds
    since the previous such call, or since the queue started waiting, x counters open then).
    """

    issued_by_hour: dict[int, int] = field(default_factory=dict)
    wait_sum: float = 0.0
    wait_count: int = 0
    wait_max: float = 0.0
    handling: list[float] = field(default_factory=list)
    backlog_since: datetime | None = None  # people have waited on busy counters since then
    pace: deque[float] = field(default_factory=lambda: deque(maxlen=PACE_WINDOW))
    pace_by_hour: dict[int, Moments] = field(default_factory=dict)  # for history_pace


@dataclass(slots=True)
class Call:
    number: int
    counter: str
    service: str
    at: datetime
    seq: int


@dataclass
class State:
    config: SiteConfig
    seq: int = 0
    last_at: datetime | None = None  # time of the latest event: "now" for pure projections
    day: str | None = None
    day_open: bool = False
    tickets: dict[str, Ticket] = field(default_factory=dict)  # the current day's tickets
    live_numbers: dict[int, str] = field(default_factory=dict)  # number -> live ticket id
    numbers_today: dict[int, str] = field(default_factory=dict)  # number -> last ticket id
    reservations_used: dict[str, str] = field(default_factory=dict)  # booking key -> ticket id
    tokens: dict[str, str] = field(default_factory=dict)  # token -> ticket id (current day)
    waiting: dict[str, dict[str, None]] = field(default_factory=dict)  # service -> FIFO set
    counters: dict[str, CounterState] = field(default_factory=dict)
    services: dict[str, ServiceDay] = field(default_factory=dict)
    stats: dict[str, ServiceStats] = field(default_factory=dict)
    history_handling: dict[str, tuple[float, int]] = field(default_factory=dict)  # mean, n
    # past days' pace samples by (service, weekday of the business day, hour of the call)
    history_pace: dict[tuple[str, int, int], Moments] = field(default_factory=dict)
    recent_calls: deque[Call] = field(default_factory=lambda: deque(maxlen=12))
    menu: str | None = None  # kiosk menu chosen by staff; None: the schedule decides (Q5)

    def __post_init__(self) -> None:
        for cid in self.config.counters:
            self.counters.setdefault(cid, CounterState(cid))

    def counter(self, cid: str) -> CounterState:
        return self.counters.setdefault(cid, CounterState(cid))

    def stat(self, service: str) -> ServiceStats:
        return self.stats.setdefault(service, ServiceStats())

    def current_ticket(self, cid: str) -> Ticket | None:
        c = self.counters.get(cid)
        return self.tickets[c.current] if c and c.current else None


def counters_serving(state: State, code: str) -> tuple[int, int]:
    """(open, free) counters that serve ``code``; free: open with nobody at it."""
    opened = free = 0
    for cid, c in state.config.counters.items():
        if code in c.services:
            cs = state.counter(cid)
            opened += cs.open
            free += cs.open and cs.current is None
    return opened, free


def _enqueue(state: State, t: Ticket, at: datetime) -> None:
    """Queue ``t``; a queue that was empty starts waiting on its counters if some are open
    and none is free (time with no counter open, or a free one, says nothing of the pace)."""
    q = state.waiting.setdefault(t.service, {})
    opened, free = counters_serving(state, t.service)
    if not q and opened and not free:
        state.stat(t.service).backlog_since = at
    q[t.id] = None


def _unqueue(state: State, t: Ticket) -> None:
    q = state.waiting.get(t.service)
    if q is not None and t.id in q:
        del q[t.id]
        if not q:  # nobody waits: the queue no longer waits on its counters
            state.stat(t.service).backlog_since = None


def _paced_call(state: State, t: Ticket, at: datetime) -> None:
    """A first call out of ``t``'s queue: record its pace sample if the queue was waiting on
    busy counters, and keep the clock running if people are still waiting."""
    st = state.stat(t.service)
    opened = counters_serving(state, t.service)[0]
    if st.backlog_since is not None and opened:
        x = (at - st.backlog_since).total_seconds() * opened
        st.pace.append(x)
        st.pace_by_hour.setdefault(at.hour, Moments()).add(x)
    _unqueue(state, t)
    if state.waiting.get(t.service):
        st.backlog_since = at


def _release_counter(state: State, t: Ticket) -> None:
    if t.counter is not None:
        c = state.counter(t.counter)
        if c.current == t.id:
            c.current = None


def _end(state: State, t: Ticket, final: str, at: datetime) -> None:
    _unqueue(state, t)
    _release_counter(state, t)
    t.state = final
    t.finished_at = at
    if state.live_numbers.get(t.number) == t.id:
        del state.live_numbers[t.number]


def _record_handling(state: State, t: Ticket, at: datetime) -> None:
    if t.called_at is not None:
        state.stat(t.service).handling.append((at - t.called_at).total_seconds())


def _close_day(state: State, at: datetime) -> None:
    for t in state.tickets.values():
        if t.live:
            _end(state, t, "expired", at)
    for c in state.counters.values():
        c.open = False
        c.current = None
    for code, st in state.stats.items():
        if st.handling:
            mean, n = state.history_handling.get(code, (0.0, 0))
            total = mean * n + sum(st.handling)
            n += len(st.handling)
            state.history_handling[code] = (total / n, n)
        weekday = datetime.fromisoformat(state.day).weekday() if state.day else at.weekday()
        for hour, m in st.pace_by_hour.items():
            h = state.history_pace.setdefault((code, weekday, hour), Moments())
            h.n, h.total, h.squares = h.n + m.n, h.total + m.total, h.squares + m.squares
            if h.n > HISTORY_CAP:
                k = HISTORY_CAP / h.n
                h.n, h.total, h.squares = HISTORY_CAP, h.total * k, h.squares * k
    state.day_open = False
    state.waiting.clear()
    state.live_numbers.clear()


def _open_day(state: State, day: str) -> None:
    state.day = day
    state.day_open = True
    state.tickets.clear()
    state.live_numbers.clear()
    state.numbers_today.clear()
    state.reservations_used.clear()
    state.tokens.clear()
    state.waiting.clear()
    state.services.clear()
    state.stats.clear()
    state.recent_calls.clear()
    for c in state.counters.values():
        c.open = False
        c.current = None


def apply(state: State, ev: Envelope) -> None:
    """Fold one event into the state. The single place where queue state changes."""
    at = datetime.fromisoformat(ev.at)
    d = ev.data
    state.seq = ev.seq
    state.last_at = at
    kind = ev.type
    if kind == "DayOpened":
        _open_day(state, d["day"])
        return
    if kind == "DayClosed":
        _close_day(state, at)
        return
    if kind == "CounterOpened":
        state.counter(d["counter"]).open = True
        spec = state.config.counters.get(d["counter"])
        for code in spec.services if spec else ():
            if code in state.stats:  # a free counter now: the pace clock restarts at its call
                state.stats[code].backlog_since = None
        return
    if kind == "CounterClosed":
        state.counter(d["counter"]).open = False
        return
    if kind == "MenuSelected":
        state.menu = d["menu"]
        return
    if kind == "TicketIssued":
        t = Ticket(
            id=d["ticket"], day=ev.day, number=d["number"], lap=d["lap"],
            origin_service=d["service"], service=d["service"], stage=1, state="waiting",
            channel=d["channel"], lang=d["lang"], priority=d["priority"], token=d["token"],
            issued_at=at, queued_at=at, queue_seq=ev.seq,
        )
        state.tickets[t.id] = t
        state.live_numbers[t.number] = t.id
        state.numbers_today[t.number] = t.id
        state.tokens[t.token] = t.id
        if d.get("reservation"):
            state.reservations_used[d["reservation"]] = t.id
        _enqueue(state, t, at)
        sd = state.services.get(t.service)
        if sd is None:
            sd = state.services[t.service] = ServiceDay(t.number, t.lap)
        sd.last_number, sd.lap = t.number, t.lap
        sd.issued += 1
        hours = state.stat(t.service).issued_by_hour
        hours[at.hour] = hours.get(at.hour, 0) + 1
        return

    t = state.tickets[d["ticket"]]
    if kind == "TicketCalled":
        if t.called_at is None and t.state == "waiting":
            _paced_call(state, t, at)
        _unqueue(state, t)
        _release_counter(state, t)
        t.state = "called"
        t.counter = d["counter"]
        t.absent_reason = None
        t.target_counter = None
        t.calls += 1
        if t.called_at is None:
            t.called_at = at
            st = state.stat(t.service)
            wait = (at - t.queued_at).total_seconds()
            st.wait_sum += wait
            st.wait_count += 1
            st.wait_max = max(st.wait_max, wait)
        state.counter(d["counter"]).current = t.id
        state.recent_calls.appendleft(Call(t.number, d["counter"], t.service, at, ev.seq))
    elif kind == "TicketCheckedIn":
        t.checked_in_at = at
        behind = d.get("place") == "checkin"  # decided in decide: behind everyone waiting now
        if (behind or d.get("requeue")) and t.state == "absent":  # "requeue": logs before #11
            t.state = "waiting"
            t.counter = None
            t.absent_reason = None
            _enqueue(state, t, at)
        if behind and t.state == "waiting":
            t.queue_seq = ev.seq
    elif kind == "TicketDeferred":
        if t.deferred_at is None:
            t.deferred_at = at
        if d.get("passed"):
            t.passed = True
    elif kind == "TicketRecalled":
        t.calls += 1
        state.recent_calls.appendleft(Call(t.number, d["counter"], t.service, at, ev.seq))
    elif kind == "TicketHeld":
        _release_counter(state, t)
        t.state = "held"
    elif kind == "TicketAbsent":
        _release_counter(state, t)
        _unqueue(state, t)  # a web ticket passed over by "call next" was still waiting
        t.state = "absent"
        t.counter = d["counter"]
        t.absent_reason = d.get("reason")
    elif kind == "TicketFinished":
        _record_handling(state, t, at)
        _end(state, t, "finished", at)
    elif kind == "TicketCancelled":
        _end(state, t, "cancelled", at)
    elif kind == "TicketTransferred":
        _record_handling(state, t, at)
        _release_counter(state, t)
        _unqueue(state, t)
        t.service = d["to_service"]
        t.stage += 1
        t.state = "waiting"
        t.queued_at = at
        t.queue_seq = ev.seq
        t.counter = None
        t.target_counter = d.get("to_counter")
        t.called_at = None
        t.calls = 0
        _enqueue(state, t, at)
    else:
        raise ValueError(f"unknown event type {kind!r}")
