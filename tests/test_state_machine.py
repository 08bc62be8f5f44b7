"""Stateful property test: random command sequences through a real Writer and SQLite store.

After every step the live state, the projections, a rebuild from a copy of the database, a
reload of the state and an independent fold of the event log must all agree.
"""

from __future__ import annotations

import shutil
import tempfile
from collections import Counter
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, initialize, invariant, rule
from support import TZ, morning, small_site

from edge.domain.clock import ManualClock
from edge.domain.commands import (
    CallHeld,
    CallNext,
    CallNumber,
    Cancel,
    ClearAbsence,
    CloseCounter,
    CloseDay,
    Command,
    Finish,
    Hold,
    Issue,
    MarkAbsent,
    OpenCounter,
    Recall,
    Transfer,
    rollover,
)
from edge.domain.model import CHANNELS, LANGS
from edge.domain.state import LIVE_STATES, TICKET_STATES
from edge.domain.views import snapshot
from edge.protocol import Envelope
from edge.store.store import EventStore
from edge.store.writer import Outcome, Writer

SITE = "test-site"
CONFIG = small_site(range_size=5)
RANGE_NUMBERS = sorted(
    n for svc in CONFIG.services.values() for n in range(svc.first, svc.last + 1)
)
# disruptive rules act only for some dice values: not 0 or 9, which hypothesis favours
RARELY = (6,)
SOMETIMES = (3, 6)

# mostly valid values, sometimes wrong ones (unknown counter/service, not issuable, bad channel)
counters = st.sampled_from(("1", "2", "3") * 4 + ("9",))
services = st.sampled_from(("A", "B") * 4 + ("C", "Z"))
channels = st.sampled_from(CHANNELS * 4 + ("fax",))

FIND = {"number_out_of_range", "unknown_ticket", "missing_ticket", "already_served",
        "ticket_cancelled", "ticket_expired"}
AT_COUNTER = {"unknown_counter", "counter_closed"}
CODES: dict[type, set[str]] = {
    # web rules (only B takes web tickets here): tests/test_web_rules.py has their own machine
    Issue: {"unknown_service", "bad_channel", "not_issuable", "service_full", "web_not_offered"},
    OpenCounter: {"unknown_counter", "counter_open"},
    CloseCounter: AT_COUNTER | {"counter_busy"},
    CloseDay: set(),
    Cancel: FIND | {"already_called"},
    CallNext: AT_COUNTER | {"queue_empty"},
    Recall: AT_COUNTER | {"no_current_ticket"},
    Hold: AT_COUNTER | {"no_current_ticket"},
    MarkAbsent: AT_COUNTER | {"no_current_ticket"},
    Finish: AT_COUNTER | {"no_current_ticket"},
    CallNumber: AT_COUNTER | FIND | {"being_served"},
    CallHeld: AT_COUNTER | FIND | {"being_served", "not_held"},
    ClearAbsence: AT_COUNTER | FIND | {"being_served", "not_absent"},
    Transfer: AT_COUNTER | {"no_current_ticket", "missing_target", "unknown_service",
                            "counter_lacks_service", "transfer_to_self"},
}


# --- an independent fold of the event log (deliberately not edge.domain.state.apply) --------


@dataclass
class FTicket:
    number: int
    service: str
    state: str = "waiting"
    stage: int = 1
    counter: str | None = None


@dataclass
class Fold:
    day: str | None = None
    day_open: bool = False
    tickets: dict[str, FTicket] = field(default_factory=dict)
    open_counters: set[str] = field(default_factory=set)
    issued: set[tuple[str, str, int, int]] = field(default_factory=set)  # day, svc, lap, number
    lap_last: dict[tuple[str, str], tuple[int, int]] = field(default_factory=dict)
    every: dict[str, FTicket] = field(default_factory=dict)  # all days: the projection's rows

    def called_at(self, cid: str) -> list[str]:
        return [tid for tid, t in self.tickets.items()
                if t.state == "called" and t.counter == cid]

    def feed(self, e: Envelope) -> None:
        d = e.data
        if e.type == "DayOpened":
            assert d["day"] != self.day
            self.day, self.day_open = d["day"], True
            self.tickets, self.open_counters = {}, set()
            return
        assert self.day_open, f"{e.type} on a closed day"
        assert e.day == self.day
        if e.type == "DayClosed":
            live = {tid for tid, t in self.tickets.items() if t.state in LIVE_STATES}
            assert set(d["expired"]) == live
            for tid in live:
                self.tickets[tid].state = "expired"
            self.day_open, self.open_counters = False, set()
        elif e.type == "CounterOpened":
            assert d["counter"] not in self.open_counters
            self.open_counters.add(d["counter"])
        elif e.type == "CounterClosed":
            assert not self.called_at(d["counter"])
            self.open_counters.remove(d["counter"])
        elif e.type == "TicketIssued":
            svc = CONFIG.services[d["service"]]
            num, lap = d["number"], d["lap"]
            assert svc.first <= num <= svc.last
            key = (e.day, svc.code, lap, num)
            assert key not in self.issued, f"number issued twice in one lap: {key}"
            self.issued.add(key)
            last_lap, last_num = self.lap_last.get((e.day, svc.code), (1, 0))
            assert (lap, num) > (last_lap, last_num), "numbers go forward within a lap"
            self.lap_last[(e.day, svc.code)] = (lap, num)
            assert d["ticket"] not in self.tickets
            self.tickets[d["ticket"]] = self.every[d["ticket"]] = FTicket(num, svc.code)
        else:
            t = self.tickets[d["ticket"]]
            cid = d.get("counter")
            if e.type == "TicketCalled":
                assert t.state in ("waiting", "held", "absent")
                assert cid in self.open_counters
                assert not self.called_at(cid), "a counter calls one ticket at a time"
                t.state, t.counter = "called", cid
            elif e.type == "TicketRecalled":
                assert (t.state, t.counter) == ("called", cid)
            elif e.type in ("TicketHeld", "TicketAbsent", "TicketFinished"):
                assert (t.state, t.counter) == ("called", cid)
                t.state = {"TicketHeld": "held", "TicketAbsent": "absent",
                           "TicketFinished": "finished"}[e.type]
            elif e.type == "TicketCancelled":
                assert t.state == "waiting"
                t.state = "cancelled"
            elif e.type == "TicketTransferred":
                assert (t.state, t.counter) == ("called", cid)
                assert d["stage"] == t.stage + 1
                assert d["number"] == t.number
                t.state, t.counter = "waiting", None
                t.stage += 1
                t.service = d["to_service"]
            else:
                raise AssertionError(f"unknown event {e.type}")

    def waiting(self) -> dict[str, tuple[int, int]]:
        """service -> (waiting, second wait)"""
        out = {code: (0, 0) for code in CONFIG.services}
        for t in self.tickets.values():
            if t.state == "waiting":
                w, s = out[t.service]
                out[t.service] = (w + 1, s + (t.stage >= 2))
        return out


# --- the machine ------------------------------------------------------------------------------


class QueueMachine(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.dir = Path(tempfile.mkdtemp(prefix="madoguchi-sm-"))
        self.clock = ManualClock(morning())
        self.n = 0
        self.store = EventStore(self.dir / "edge.db", SITE, durable=False)
        self.writer = Writer(self.store, CONFIG, self.clock,
                             new_id=self._new_id, new_token=self._new_token)
        self.numbers: set[int] = set()  # every number issued so far, all days
        self.tokens: list[str] = []
        self.fold = Fold()
        self.folded = 0

    def _new_id(self) -> str:
        self.n += 1
        return f"id-{self.n:06d}"

    def _new_token(self) -> str:
        self.n += 1
        return f"tok-{self.n:06d}"

    def teardown(self) -> None:
        self.writer.close()
        shutil.rmtree(self.dir, ignore_errors=True)

    # --- running a command ----------------------------------------------------------------
    def do(self, cmd: Command | None) -> Outcome:
        before = self.store.last_seq()
        assert before == self.writer.state.seq
        expected_roll = [k for k, _ in rollover(self.writer.state, self.clock.now())]
        out = self.writer.execute_sync(cmd)
        after = self.store.last_seq()
        assert [e.seq for e in out.events] == list(range(before + 1, after + 1))
        stored = list(self.store.events(after=before))
        assert [e.to_dict() for e in stored] == [e.to_dict() for e in out.events]
        kinds = [e.type for e in out.events]
        assert kinds[:len(expected_roll)] == expected_roll
        if out.refused is not None:
            assert cmd is not None
            assert kinds == expected_roll, "a refused command commits only the rollover"
            assert out.refused.code in CODES[type(cmd)] | {"day_closed"}, out.refused.code
        elif cmd is not None:
            assert len(kinds) > len(expected_roll)
            assert not set(kinds[len(expected_roll):]) & {"DayOpened"}
        return out

    # --- drawing arguments: mostly ones that can work, sometimes anything ------------------
    def _likely(self, data: st.DataObject, pool: list[Any], anything: st.SearchStrategy[Any],
                label: str) -> Any:
        if pool and data.draw(st.integers(0, 9), label=f"likely {label}") < 8:
            return data.draw(st.sampled_from(pool), label=label)
        return data.draw(anything, label=label)

    def _counter(self, data: st.DataObject, busy: bool = False) -> str:
        """An open counter (``busy``: one serving someone), now and then any counter."""
        state = self.writer.state
        pool = [cid for cid, c in sorted(state.counters.items())
                if (c.current if busy else c.open)]
        return str(self._likely(data, pool, counters, "counter"))

    def _number(self, data: st.DataObject, states: tuple[str, ...] = TICKET_STATES) -> int:
        """A number of today's tickets in one of ``states``, or any number at all."""
        pool = sorted({t.number for t in self.writer.state.tickets.values()
                       if t.state in states})
        anything = st.one_of(st.sampled_from(sorted(self.numbers or {1})),
                             st.sampled_from(RANGE_NUMBERS), st.integers(-2, 700))
        return int(self._likely(data, pool, anything, "number"))

    def _token(self, data: st.DataObject, states: tuple[str, ...] = TICKET_STATES) -> str:
        pool = [t.token for t in self.writer.state.tickets.values() if t.state in states]
        anything = st.sampled_from([*self.tokens[-20:], "", "tok-bogus"])
        return str(self._likely(data, pool, anything, "token"))

    def _rolls(self) -> bool:
        return bool(rollover(self.writer.state, self.clock.now()))

    # --- time -----------------------------------------------------------------------------
    @initialize(opened=st.sets(st.sampled_from(("1", "2", "3")), min_size=1),
                issued=st.lists(st.sampled_from(("A", "B")), max_size=6))
    def start(self, opened: set[str], issued: list[str]) -> None:
        for cid in sorted(opened):
            assert self.do(OpenCounter(cid)).refused is None
        for code in issued:
            self.issue(code, "kiosk", "ja", False)

    @rule(seconds=st.integers(0, 900))
    def advance(self, seconds: int) -> None:
        self.clock.advance(seconds)

    @rule(hours=st.integers(1, 6), dice=st.integers(0, 9))
    def advance_hours(self, hours: int, dice: int) -> None:
        if dice in RARELY:  # sometimes crosses midnight: the next command rolls the day over
            self.clock.advance(hours * 3600)

    @rule(days=st.integers(1, 2), minutes=st.integers(0, 120), dice=st.integers(0, 9),
          opened=st.sets(st.sampled_from(("1", "2", "3")), min_size=1))
    def next_day(self, days: int, minutes: int, dice: int, opened: set[str]) -> None:
        if dice not in SOMETIMES:  # a new day only now and then, or few days see any traffic
            return
        today = self.clock.now().date()
        self.clock.set(datetime(today.year, today.month, today.day, 8, 30, tzinfo=TZ)
                       + timedelta(days=days, minutes=minutes))
        for cid in sorted(opened):  # the first of these rolls the day over
            assert self.do(OpenCounter(cid)).refused is None

    @rule(dice=st.integers(0, 9))
    def tick(self, dice: int) -> None:
        if dice in SOMETIMES:  # what the daemon's timer does: only roll the day over
            out = self.do(None)
            assert out.refused is None

    # --- commands -------------------------------------------------------------------------
    @rule(service=services, channel=channels, lang=st.sampled_from(LANGS),
          priority=st.booleans(), more=st.integers(0, 2))
    def issue_some(self, service: str, channel: str, lang: str, priority: bool,
                   more: int) -> None:
        for _ in range(1 + more):
            self.issue(service, channel, lang, priority)

    def issue(self, service: str, channel: str, lang: str, priority: bool) -> None:
        fresh_day = self._rolls()
        live = set() if fresh_day else set(self.writer.state.live_numbers)
        booking = f"{len(self.tokens):064x}" if channel == "reservation" else None
        out = self.do(Issue(service, channel=channel, lang=lang, priority=priority,
                            reservation=booking))
        svc = CONFIG.services.get(service)
        if out.refused is None:
            assert svc is not None
            ev = out.events[-1]
            assert ev.type == "TicketIssued"
            assert svc.first <= ev.data["number"] <= svc.last
            assert ev.data["number"] not in live
            assert ev.data["priority"] == (priority or channel == "reservation")
            assert out.ticket is not None
            assert out.ticket["token"] == ev.data["token"]
            self.numbers.add(ev.data["number"])
            self.tokens.append(ev.data["token"])
        elif out.refused.code == "service_full":
            assert svc is not None
            if svc.wrap and svc.daily_limit is None:
                assert set(range(svc.first, svc.last + 1)) <= live

    @rule(data=st.data())
    def call_next(self, data: st.DataObject) -> None:
        self._call_next(self._counter(data))

    def _call_next(self, counter: str) -> Outcome:
        expected: str | None = None
        state = self.writer.state
        if not self._rolls() and counter in CONFIG.counters and state.counters[counter].open:
            svcs = CONFIG.counters[counter].services
            cands = [t for t in state.tickets.values()
                     if t.state == "waiting" and t.service in svcs
                     and t.target_counter in (None, counter)]
            named = [t for t in cands if t.target_counter == counter]
            if named:
                expected = min(named, key=lambda t: t.queue_seq).id
            elif cands:
                expected = min(cands, key=lambda t: (svcs.index(t.service), not t.priority,
                                                     t.queue_seq)).id
        out = self.do(CallNext(counter))
        if out.refused is None:
            assert out.events[-1].data["ticket"] == expected
        elif out.refused.code == "queue_empty":
            assert expected is None
        return out

    @rule(data=st.data(), then=st.sampled_from(("finish", "transfer", "hold", "absent",
                                                 "recall", "nothing")),
          to_service=st.sampled_from((None, "A", "B", "C")),
          to_counter=st.sampled_from((None, "1", "2", "3")))
    def serve(self, data: st.DataObject, then: str, to_service: str | None,
              to_counter: str | None) -> None:
        """An operator's usual pair: call next, then deal with the visitor at once."""
        counter = self._counter(data)
        if self._call_next(counter).refused is not None:
            return
        if then == "transfer":
            self._transfer(counter, to_service, to_counter)
        elif then != "nothing":
            kinds: dict[str, type[Finish | Hold | MarkAbsent | Recall]] = {
                "finish": Finish, "hold": Hold, "absent": MarkAbsent, "recall": Recall}
            assert self.do(kinds[then](counter)).refused is None

    @rule(data=st.data())
    def recall(self, data: st.DataObject) -> None:
        self.do(Recall(self._counter(data, busy=True)))

    @rule(data=st.data())
    def call_number(self, data: st.DataObject) -> None:
        self.do(CallNumber(self._counter(data), self._number(data)))

    @rule(data=st.data())
    def hold(self, data: st.DataObject) -> None:
        self.do(Hold(self._counter(data, busy=True)))

    @rule(data=st.data())
    def call_held(self, data: st.DataObject) -> None:
        self.do(CallHeld(self._counter(data), self._number(data, ("held",))))

    @rule(data=st.data())
    def mark_absent(self, data: st.DataObject) -> None:
        self.do(MarkAbsent(self._counter(data, busy=True)))

    @rule(data=st.data())
    def clear_absence_by_number(self, data: st.DataObject) -> None:
        self.do(ClearAbsence(self._counter(data), number=self._number(data, ("absent",))))

    @rule(data=st.data())
    def clear_absence_by_token(self, data: st.DataObject) -> None:
        self.do(ClearAbsence(self._counter(data), token=self._token(data, ("absent",))))

    @rule(data=st.data(), by_token=st.booleans())
    def cancel(self, data: st.DataObject, by_token: bool) -> None:
        if by_token:
            self.do(Cancel(token=self._token(data, ("waiting",))))
        else:
            self.do(Cancel(number=self._number(data, ("waiting",))))

    @rule(data=st.data())
    def finish(self, data: st.DataObject) -> None:
        self.do(Finish(self._counter(data, busy=True)))

    @rule(data=st.data(), to_service=st.sampled_from((None, "A", "B", "C", "C", "Z")),
          to_counter=st.sampled_from((None, None, "1", "2", "3", "9")))
    def transfer(self, data: st.DataObject, to_service: str | None,
                 to_counter: str | None) -> None:
        self._transfer(self._counter(data, busy=True), to_service, to_counter)

    def _transfer(self, counter: str, to_service: str | None, to_counter: str | None) -> None:
        cur = None if self._rolls() else self.writer.state.current_ticket(counter)
        stage, number = (cur.stage, cur.number) if cur else (0, 0)
        out = self.do(Transfer(counter, to_service=to_service, to_counter=to_counter))
        if out.refused is None:
            t = self.writer.state.tickets[out.events[-1].data["ticket"]]
            assert (t.number, t.stage, t.state) == (number, stage + 1, "waiting")
            assert t.target_counter == to_counter

    @rule(counter=counters)
    def open_counter(self, counter: str) -> None:
        self.do(OpenCounter(counter))

    @rule(data=st.data())
    def close_counter(self, data: st.DataObject) -> None:
        self.do(CloseCounter(self._counter(data)))

    @rule(dice=st.integers(0, 9), reopen=st.booleans(),
          opened=st.sets(st.sampled_from(("1", "2", "3")), min_size=1))
    def close_day(self, dice: int, reopen: bool, opened: set[str]) -> None:
        if dice not in RARELY:
            return
        out = self.do(CloseDay())
        if out.refused is None:
            assert not self.writer.state.live_numbers
            assert self.do(Issue("A")).refused.code == "day_closed"  # type: ignore[union-attr]
        if reopen:  # or else every later command of this run is refused until next_day
            self.next_day(1, 0, SOMETIMES[0], opened)

    # --- invariants -----------------------------------------------------------------------
    def _sync_fold(self) -> None:
        """Feed the events committed since the last step to the independent fold."""
        for e in self.store.events(after=self.folded):
            self.fold.feed(e)
            self.folded = e.seq

    @invariant()
    def numbers_unique(self) -> None:
        state = self.writer.state
        live = [t for t in state.tickets.values() if t.live]
        dupes = [n for n, k in Counter(t.number for t in live).items() if k > 1]
        assert not dupes, f"live tickets share numbers {dupes}"
        assert state.live_numbers == {t.number: t.id for t in live}
        laps = Counter((t.origin_service, t.lap, t.number) for t in state.tickets.values())
        assert max(laps.values(), default=1) == 1

    @invariant()
    def states_consistent(self) -> None:
        state = self.writer.state
        tickets = state.tickets
        assert all(t.state in TICKET_STATES and t.day == state.day for t in tickets.values())
        for code in CONFIG.services:
            expected = sorted((t.queue_seq, t.id) for t in tickets.values()
                              if t.state == "waiting" and t.service == code)
            assert [(tickets[i].queue_seq, i) for i in state.waiting.get(code, {})] == expected
        assert set(state.waiting) <= set(CONFIG.services)
        for cid, c in state.counters.items():
            called_here = [t.id for t in tickets.values()
                           if t.state == "called" and t.counter == cid]
            assert len(called_here) <= 1
            assert called_here == ([c.current] if c.current else [])
            if c.current:
                assert c.open
        if not state.day_open:
            assert not any(t.live for t in tickets.values())
            assert not any(c.open for c in state.counters.values())

    @invariant()
    def matches_independent_fold(self) -> None:
        self._sync_fold()
        state = self.writer.state
        snap = snapshot(state, self.clock.now())
        assert (snap["day"], snap["day_open"]) == (self.fold.day, self.fold.day_open)
        rows = {r["code"]: (r["waiting"], r["second_wait"]) for r in snap["services"]}
        assert rows == self.fold.waiting()
        assert {c["id"] for c in snap["counters"] if c["open"]} == self.fold.open_counters
        assert {tid: t.state for tid, t in state.tickets.items()} == {
            tid: t.state for tid, t in self.fold.tickets.items()}
        assert {c["counter"]: c["number"] for c in snap["calling"]} == {
            t.counter: t.number for t in self.fold.tickets.values() if t.state == "called"}

    @invariant()
    def projections_match_state_and_rebuild(self) -> None:
        self._sync_fold()
        live = self.store.dump_projections()
        cols = [d[1] for d in self.store.conn.execute("PRAGMA table_info(tickets)")]
        rows = {r[0]: dict(zip(cols, r, strict=True)) for r in live["tickets"]}
        for t in self.writer.state.tickets.values():
            assert rows[t.id] == t.to_row()
        # ticket rows of every day against the independent fold (rebuild shares the capture
        # code with the live path, so it cannot be the only check of the projection)
        assert {r["id"]: (r["number"], r["service"], r["stage"], r["state"], r["counter"])
                for r in rows.values()} == {
            tid: (t.number, t.service, t.stage, t.state, t.counter)
            for tid, t in self.fold.every.items()}
        if self.store.last_seq():  # every counter has a row once the first day opened
            assert {r[0]: (r[1], r[2]) for r in live["counters"]} == {
                cid: (int(c.open), c.current) for cid, c in self.writer.state.counters.items()}
        # rebuild a copy of the database (backup API) and compare every projection row
        copy = EventStore(":memory:", SITE, durable=False)
        try:
            self.store.conn.backup(copy.conn)
            copy.rebuild(CONFIG)
            assert copy.dump_projections() == live
        finally:
            copy.close()

    @invariant()
    def reload_gives_same_state(self) -> None:
        now = self.clock.now()
        reloaded = self.store.load_state(CONFIG)
        assert snapshot(reloaded, now) == snapshot(self.writer.state, now)
        assert reloaded.history_handling == self.writer.state.history_handling


QueueMachine.TestCase.settings = settings(
    max_examples=60, stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much],
)
TestQueueMachine = QueueMachine.TestCase


def test_machine_smoke() -> None:
    """A fixed run through the machine, so a broken harness fails without hypothesis."""
    m = QueueMachine()
    try:
        m.start({"1", "3"}, [])
        for _ in range(6):
            m.issue("A", "kiosk", "ja", False)
        for cmd in (CallNext("1"), Transfer("1", to_service="C"), CallNext("3"), Finish("3")):
            assert m.do(cmd).refused is None
        m.issue("A", "kiosk", "ja", False)
        m.next_day(1, 0, SOMETIMES[0], set())
        m.issue("B", "web", "en", True)
        for inv in (m.numbers_unique, m.states_consistent, m.matches_independent_fold,
                    m.projections_match_state_and_rebuild, m.reload_gives_same_state):
            inv()
        assert m.fold.day == "2026-11-22"
        assert len(m.fold.issued) == 7
    finally:
        m.teardown()
