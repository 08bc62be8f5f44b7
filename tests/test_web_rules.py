"""Web-ticket rules at the site (W4, ``edge/domain/web.py``): hours, daily cap, check-in.

Run through the real Writer and SQLite store, so every case also proves that a rebuild from the
event log gives the live projections. A hypothesis machine drives random mixes of web and kiosk
tickets, check-ins, calls and days, and checks the rules as invariants over the event log.
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import replace
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule
from support import TZ, small_site

from edge.domain.clock import ManualClock
from edge.domain.commands import (
    CallNext,
    Cancel,
    CheckIn,
    ClearAbsence,
    Command,
    Finish,
    Issue,
    MarkAbsent,
    OpenCounter,
)
from edge.domain.model import SiteConfig, WebRules
from edge.domain.views import snapshot
from edge.protocol import Envelope
from edge.store.store import EventStore
from edge.store.writer import Outcome, Writer

CAP = 3
RULES = WebRules("09:00", "12:00", daily_cap=CAP, checkin_required=True)


def web_site(rules: WebRules = RULES) -> SiteConfig:
    """small_site with B taking web tickets under ``rules``; A takes none."""
    base = small_site(range_size=20)
    services = dict(base.services)
    services["B"] = replace(services["B"], web=rules)
    return replace(base, services=services)


def at(hh: int, mm: int = 0, day: int = 21) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=TZ)


class Site:
    """A Writer over a temporary SQLite file with a manual clock."""

    def __init__(self, config: SiteConfig | None = None, start: datetime | None = None) -> None:
        self.config = config or web_site()
        self.dir = Path(tempfile.mkdtemp(prefix="madoguchi-web-"))
        self.clock = ManualClock(start or at(10))
        self.store = EventStore(self.dir / "edge.db", self.config.site, durable=False)
        self.writer = Writer(self.store, self.config, self.clock)

    def do(self, cmd: Command) -> Outcome:
        return self.writer.execute_sync(cmd)

    def ok(self, cmd: Command) -> Outcome:
        out = self.do(cmd)
        assert out.refused is None, (out.refused.code, out.refused.message)
        return out

    def refused(self, cmd: Command) -> str:
        out = self.do(cmd)
        assert out.refused is not None, f"{cmd} was not refused"
        assert out.refused.message
        assert out.refused.message_ja
        assert not out.events or all(e.type in ("DayOpened", "DayClosed") for e in out.events)
        return out.refused.code

    def web(self, service: str = "B") -> dict[str, Any]:
        out = self.ok(Issue(service, channel="web", lang="en"))
        assert out.ticket is not None
        return out.ticket

    def kiosk(self, service: str = "B") -> dict[str, Any]:
        out = self.ok(Issue(service))
        assert out.ticket is not None
        return out.ticket

    def snap(self) -> dict[str, Any]:
        return snapshot(self.writer.state, self.clock.now())

    def assert_rebuild_equal(self) -> None:
        live = self.store.dump_projections()
        copy = EventStore(":memory:", self.config.site, durable=False)
        try:
            self.store.conn.backup(copy.conn)
            copy.rebuild(self.config)
            assert copy.dump_projections() == live
        finally:
            copy.close()
        now = self.clock.now()
        assert snapshot(self.store.load_state(self.config), now) == snapshot(
            self.writer.state, now)

    def close(self) -> None:
        self.writer.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def test_hours_cap_and_not_offered() -> None:
    s = Site(start=at(8, 59))
    try:
        assert s.refused(Issue("B", channel="web")) == "web_closed"
        s.kiosk()  # the office's own kiosk is not bound by web hours
        s.clock.set(at(9, 0))
        first = s.web()
        assert first["channel"] == "web"
        assert s.refused(Issue("A", channel="web")) == "web_not_offered"
        s.web()
        s.ok(Issue("B", channel="web", priority=False))
        assert s.refused(Issue("B", channel="web")) == "web_cap_reached"
        s.kiosk()  # the cap counts web tickets only
        s.ok(Issue("B", channel="reservation", reservation="c" * 64))
        s.clock.set(at(12, 0))
        assert s.refused(Issue("B", channel="web")) == "web_closed"
        s.clock.set(at(9, 30, day=22))  # a new day: the cap starts again
        s.web()
        s.assert_rebuild_equal()
    finally:
        s.close()


def test_cap_counts_cancelled_and_served_web_tickets() -> None:
    s = Site()
    try:
        tickets = [s.web() for _ in range(CAP)]
        s.ok(CheckIn(tickets[0]["token"]))
        s.ok(Cancel(token=tickets[1]["token"]))
        assert s.refused(Issue("B", channel="web")) == "web_cap_reached"
    finally:
        s.close()


def test_not_checked_in_web_ticket_is_deferred_then_absent_after_grace() -> None:
    """Issue 11 changed this: a web ticket not checked in is passed over (deferred) and keeps
    its turn for the grace period; only then does "call next" mark it absent."""
    s = Site()
    try:
        w = s.web()
        k = s.kiosk()
        s.ok(OpenCounter("2"))
        out = s.ok(CallNext("2"))
        kinds = [(e.type, e.data["ticket"]) for e in out.events]
        assert kinds == [("TicketDeferred", w["id"]), ("TicketCalled", k["id"])]
        assert out.events[0].data["passed"] is True
        assert s.snap()["absent"] == []
        later = s.kiosk()
        s.clock.advance((RULES.checkin_grace_min - 1) * 60)
        out = s.ok(CallNext("2"))  # still within the grace: deferred again, not absent
        assert [e.type for e in out.events] == ["TicketFinished", "TicketCalled"]
        assert out.events[-1].data["ticket"] == later["id"]
        s.clock.advance(60)
        last = s.kiosk()
        out = s.ok(CallNext("2"))  # the grace has run out
        assert [(e.type, e.data["ticket"]) for e in out.events] == [
            ("TicketAbsent", w["id"]), ("TicketFinished", later["id"]),
            ("TicketCalled", last["id"])]
        assert out.events[0].data["reason"] == "not_checked_in"
        assert [a["number"] for a in s.snap()["absent"]] == [w["number"]]
        # checked in at the kiosk later: back in line behind everyone waiting then
        after = s.kiosk()
        s.ok(CheckIn(w["token"], kiosk="k1"))
        assert s.snap()["absent"] == []
        s.ok(Finish("2"))
        assert s.ok(CallNext("2")).events[-1].data["ticket"] == after["id"]
        assert s.ok(CallNext("2")).events[-1].data["ticket"] == w["id"]
        s.assert_rebuild_equal()
    finally:
        s.close()


def test_checked_in_before_being_passed_keeps_its_place() -> None:
    s = Site()
    try:
        w = s.web()
        k = s.kiosk()
        s.ok(CheckIn(w["token"]))
        s.ok(OpenCounter("2"))
        assert s.ok(CallNext("2")).events[-1].data["ticket"] == w["id"]
        assert s.ok(CallNext("2")).events[-1].data["ticket"] == k["id"]
        s.assert_rebuild_equal()
    finally:
        s.close()


def test_only_deferred_web_tickets_left_and_scan_at_counter() -> None:
    s = Site()
    try:
        w1, w2 = s.web(), s.web()
        s.ok(OpenCounter("1"))
        out = s.ok(CallNext("1"))  # nobody to call: both deferred, the counter stays free
        assert [e.type for e in out.events] == ["TicketDeferred", "TicketDeferred"]
        assert s.writer.state.counter("1").current is None
        assert s.refused(CallNext("1")) == "queue_empty"
        s.clock.advance(RULES.checkin_grace_min * 60)
        out = s.ok(CallNext("1"))  # the grace has run out: both marked absent
        assert [e.type for e in out.events] == ["TicketAbsent", "TicketAbsent"]
        # a scan at the counter (staff see the person) clears the absence and calls it (Q9)
        out = s.ok(ClearAbsence("1", token=w2["token"]))
        assert out.events[-1].type == "TicketCalled"
        assert out.events[-1].data["ticket"] == w2["id"]
        s.ok(MarkAbsent("1"))  # a called web ticket can still be marked absent by staff
        assert sorted(a["number"] for a in s.snap()["absent"]) == sorted(
            [w1["number"], w2["number"]])
        s.assert_rebuild_equal()
    finally:
        s.close()


def test_checked_in_web_ticket_and_no_checkin_rule_are_called() -> None:
    s = Site()
    try:
        w = s.web()
        s.ok(CheckIn(w["token"]))
        s.ok(OpenCounter("2"))
        assert s.ok(CallNext("2")).events[-1].data["ticket"] == w["id"]
    finally:
        s.close()
    s = Site(web_site(replace(RULES, checkin_required=False)))
    try:
        w = s.web()
        s.ok(OpenCounter("2"))
        out = s.ok(CallNext("2"))
        assert [e.type for e in out.events] == ["TicketCalled"]
        assert out.events[-1].data["ticket"] == w["id"]
    finally:
        s.close()


# --- random mixes ----------------------------------------------------------------------------


class WebMachine(RuleBasedStateMachine):
    """Random web/kiosk traffic; the rules are checked on the committed event log."""

    def __init__(self) -> None:
        super().__init__()
        self.site = Site(start=at(8, 45))
        self.checked: set[str] = set()  # ticket ids checked in (independent of the fold)
        self.web_ids: set[str] = set()
        self.called_before: set[str] = set()
        self.seen = 0

    def teardown(self) -> None:
        self.site.close()

    @rule(minutes=st.integers(0, 90))
    def advance(self, minutes: int) -> None:
        self.site.clock.advance(minutes * 60)

    @rule(dice=st.integers(0, 9))
    def next_day(self, dice: int) -> None:
        if dice == 3:
            now = self.site.clock.now() + timedelta(days=1)
            self.site.clock.set(now.replace(hour=8, minute=50))

    @rule(service=st.sampled_from(("A", "B", "B")),
          channel=st.sampled_from(("web", "web", "kiosk")))
    def issue(self, service: str, channel: str) -> None:
        self.site.do(Issue(service, channel=channel))

    @rule(data=st.data())
    def check_in(self, data: st.DataObject) -> None:
        pool = sorted(t.token for t in self.site.writer.state.tickets.values()
                      if t.channel == "web")
        if pool:
            self.site.do(CheckIn(data.draw(st.sampled_from(pool))))

    @rule(counter=st.sampled_from(("1", "2")), then=st.sampled_from(("finish", "absent", "")))
    def call(self, counter: str, then: str) -> None:
        self.site.do(OpenCounter(counter))
        if self.site.do(CallNext(counter)).refused is None and then:
            self.site.do(Finish(counter) if then == "finish" else MarkAbsent(counter))

    @rule(data=st.data(), counter=st.sampled_from(("1", "2")))
    def scan_absent(self, data: st.DataObject, counter: str) -> None:
        pool = sorted(t.token for t in self.site.writer.state.tickets.values()
                      if t.state == "absent")
        if pool:
            self.site.do(OpenCounter(counter))
            self.site.do(ClearAbsence(counter, token=data.draw(st.sampled_from(pool))))

    @invariant()
    def rules_hold_in_the_log(self) -> None:
        events: list[Envelope] = list(self.site.store.events(after=self.seen))
        for e in events:
            self.seen = e.seq
            d = e.data
            if e.type == "TicketIssued" and d["channel"] == "web":
                assert d["service"] == "B", "only B takes web tickets"
                hhmm = datetime.fromisoformat(e.at).strftime("%H:%M")
                assert RULES.start <= hhmm < RULES.end, f"web ticket at {hhmm}"
                self.web_ids.add(d["ticket"])
            elif e.type == "TicketCheckedIn":
                self.checked.add(d["ticket"])
            elif e.type == "TicketCalled":
                if d["reason"] == "next" and d["ticket"] in self.web_ids:
                    assert d["ticket"] in self.checked or d["ticket"] in self.called_before, \
                        "call next called a web ticket that was not checked in"
                self.called_before.add(d["ticket"])
            elif e.type == "TicketAbsent" and d.get("reason") == "not_checked_in":
                assert d["ticket"] in self.web_ids
                assert d["ticket"] not in self.checked
        state = self.site.writer.state
        web_today = sum(1 for t in state.tickets.values() if t.channel == "web")
        assert web_today <= CAP, "daily cap exceeded"

    @invariant()
    def rebuild_equal(self) -> None:
        self.site.assert_rebuild_equal()


WebMachine.TestCase.settings = settings(
    max_examples=40, stateful_step_count=40, deadline=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.filter_too_much])
TestWebMachine = WebMachine.TestCase
