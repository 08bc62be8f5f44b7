"""Web-ticket check-in is fair to walk-ins (issue 11, the rule in ``edge/domain/web.py``).

A hypothesis state machine drives random sequences of walk-in (kiosk) issues, web issues,
check-ins at the kiosk, "call next" at two counters (sometimes finishing the visitor) and clock
advances through the pure core (``decide`` + ``apply``), and checks after every step:

* **No overtaking.** Let X be a web ticket checking in at time T. "The line" of a queue is its
  waiting tickets in call-next order (priority, then ``queue_seq``); "people ahead" of a waiting
  ticket is ``views.ahead_of``. X *overtakes* walk-in K if K was waiting at T and either
  (a) the check-in increases K's people-ahead count, or (b) K was ahead of X in the line just
  before T and X is called before K. Both are forbidden for every waiting walk-in K.
* A web ticket not checked in is never called by "call next".
* It is never marked absent (``not_checked_in``) before ``checkin_grace_min`` minutes have
  passed since its turn first came (the first "call next" that reached it), and "call next"
  reaches it only when everything the counter would call before it is a web ticket not checked
  in either (it is at the front).
* Nobody is lost: every issued ticket is in exactly one place (its queue, one counter, held,
  absent, or finished), and a fold of the event log from scratch gives the same state.

Run against the rule before issue 11 (absent on the first pass, back at the old place on
check-in), this machine fails at once (checked when the rule was written).
"""

from __future__ import annotations

import itertools
from dataclasses import replace
from datetime import datetime, timedelta
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from support import TZ, small_site

from edge.domain.commands import (
    CallNext,
    CheckIn,
    Command,
    Context,
    Finish,
    Issue,
    OpenCounter,
    Refused,
    decide,
)
from edge.domain.model import SiteConfig, WebRules
from edge.domain.state import State, Ticket, apply
from edge.domain.views import ahead_of
from edge.protocol import Envelope

GRACE_MIN = 10


def config() -> SiteConfig:
    base = small_site(range_size=60)
    services = dict(base.services)
    services["B"] = replace(services["B"], web=WebRules(
        "00:00", "24:00", checkin_required=True, checkin_grace_min=GRACE_MIN))
    return replace(base, services=services)


class Core:
    """The pure core with a manual clock and an event log."""

    def __init__(self) -> None:
        self.state = State(config())
        self.now = datetime(2026, 11, 24, 9, 0, tzinfo=TZ)
        self.log: list[Envelope] = []
        ids = itertools.count(1)
        self.ctx_ids = lambda: f"t{next(ids):04d}"
        tokens = itertools.count(1)
        self.ctx_tokens = lambda: f"tok{next(tokens):08d}"
        self.emit([("DayOpened", {"day": self.now.date().isoformat()})])
        for cid in ("1", "2"):
            self.do(OpenCounter(cid))

    def emit(self, events: list[tuple[str, dict[str, Any]]]) -> list[Envelope]:
        out = []
        for kind, data in events:
            ev = Envelope(1, "test-site", self.state.seq + 1, f"e{self.state.seq + 1}",
                          self.now.isoformat(), self.now.date().isoformat(), kind, data)
            apply(self.state, ev)
            self.log.append(ev)
            out.append(ev)
        return out

    def do(self, cmd: Command) -> list[Envelope] | None:
        ctx = Context(self.now, self.ctx_ids, self.ctx_tokens)
        try:
            events = decide(self.state, cmd, ctx)
        except Refused:
            return None
        return self.emit(events)


def line_key(state: State, cid: str, t: Ticket) -> tuple[int, bool, int]:
    """Call-next order at counter ``cid`` (no named transfers in this test)."""
    rank = state.config.counters[cid].services.index(t.service)
    return (rank, *t.queue_key)


class Fairness(RuleBasedStateMachine):
    def __init__(self) -> None:
        super().__init__()
        self.core = Core()
        self.checked: set[str] = set()
        self.turn_came: dict[str, datetime] = {}  # first call-next that reached a web ticket
        self.called: set[str] = set()
        # X -> walk-ins waiting and ahead of X in its line when X checked in
        self.must_precede: dict[str, set[str]] = {}

    # --- rules ----------------------------------------------------------------------------

    @rule(service=st.sampled_from(("A", "B", "B")))
    def walk_in(self, service: str) -> None:
        self.core.do(Issue(service, channel="kiosk"))

    @rule()
    def web(self) -> None:
        self.core.do(Issue("B", channel="web"))

    @rule(data=st.data())
    def check_in(self, data: st.DataObject) -> None:
        state = self.core.state
        pool = sorted(t.id for t in state.tickets.values()
                      if t.channel == "web" and t.id not in self.checked)
        if not pool:
            return
        x = state.tickets[data.draw(st.sampled_from(pool))]
        walk_ins = [t for t in state.tickets.values()
                    if t.channel == "kiosk" and t.state == "waiting"]
        before = {k.id: ahead_of(state, k) for k in walk_ins}
        ahead = {k.id for k in walk_ins if k.service == x.service and x.state == "waiting"
                 and k.queue_key < x.queue_key}
        if self.core.do(CheckIn(x.token)) is None:
            return
        self.checked.add(x.id)
        self.must_precede[x.id] = ahead
        for k in walk_ins:
            after = ahead_of(state, state.tickets[k.id])
            assert after <= before[k.id], (
                f"check-in of {x.number} put walk-in {k.number} further back "
                f"({before[k.id]} -> {after} ahead)")

    @rule(counter=st.sampled_from(("1", "2")), finish=st.booleans())
    def call_next(self, counter: str, finish: bool) -> None:
        state = self.core.state
        waiting = [state.tickets[tid] for code in state.config.counters[counter].services
                   for tid in state.waiting.get(code, ())]
        keys = {t.id: line_key(state, counter, t) for t in waiting}
        unchecked = {t.id for t in waiting if t.channel == "web" and t.id not in self.checked}
        events = self.core.do(CallNext(counter))
        for ev in events or ():
            tid = ev.data["ticket"]
            if ev.type in ("TicketDeferred", "TicketAbsent") and tid in unchecked:
                front = [o for o in waiting if keys[o.id] < keys[tid]]
                assert all(o.id in unchecked for o in front), "reached before its turn"
                came = self.turn_came.setdefault(tid, self.core.now)
                if ev.type == "TicketAbsent":
                    assert ev.data["reason"] == "not_checked_in"
                    assert self.core.now - came >= timedelta(minutes=GRACE_MIN), (
                        f"{ev.data['number']} marked absent before its grace")
            if ev.type == "TicketCalled":
                assert tid not in unchecked, "call next called a web ticket not checked in"
                for k in self.must_precede.get(tid, ()):
                    assert k in self.called, f"{ev.data['number']} overtook walk-in {k}"
                self.called.add(tid)
        if events and finish:
            self.core.do(Finish(counter))

    @rule(minutes=st.integers(1, 15))
    def advance(self, minutes: int) -> None:
        self.core.now += timedelta(minutes=minutes)

    # --- invariants -------------------------------------------------------------------------

    @invariant()
    def nobody_is_lost(self) -> None:
        state = self.core.state
        issued = sum(1 for e in self.core.log if e.type == "TicketIssued")
        assert len(state.tickets) == issued
        queued = {tid for q in state.waiting.values() for tid in q}
        current = [c.current for c in state.counters.values() if c.current]
        assert len(current) == len(set(current))
        for t in state.tickets.values():
            assert (t.id in queued) == (t.state == "waiting"), f"{t.number} {t.state}"
            assert (t.id in current) == (t.state == "called"), f"{t.number} {t.state}"
            assert t.state in ("waiting", "called", "absent", "finished")

    @invariant()
    def log_folds_to_the_same_state(self) -> None:
        fresh = State(config())
        for ev in self.core.log:
            apply(fresh, ev)
        live = self.core.state

        def rows(s: State) -> dict[str, Any]:
            return {tid: (t.to_row(), t.deferred_at, t.passed, t.absent_reason)
                    for tid, t in s.tickets.items()}

        assert rows(fresh) == rows(live)
        assert {k: list(v) for k, v in fresh.waiting.items()} == {
            k: list(v) for k, v in live.waiting.items()}
        assert {c: s.to_row() for c, s in fresh.counters.items()} == {
            c: s.to_row() for c, s in live.counters.items()}


Fairness.TestCase.settings = settings(
    max_examples=150, stateful_step_count=50, deadline=None,
    suppress_health_check=[HealthCheck.too_slow])
TestFairness = Fairness.TestCase


def test_deferred_ticket_keeps_its_place_when_nobody_passed_it() -> None:
    """Its turn came with nobody else in its queue: checking in later keeps its place."""
    core = Core()
    w = core.do(Issue("B", channel="web"))
    assert w is not None
    wid = w[0].data["ticket"]
    out = core.do(CallNext("2"))
    assert out is not None
    assert [e.type for e in out] == ["TicketDeferred"]
    k = core.do(Issue("B"))
    assert k is not None
    core.now += timedelta(minutes=GRACE_MIN - 1)
    core.do(CheckIn(w[0].data["token"]))
    out = core.do(CallNext("2"))
    assert out is not None
    assert out[-1].data["ticket"] == wid
