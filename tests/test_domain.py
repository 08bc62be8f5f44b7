"""Pure domain tests: State + decide + apply, a ManualClock and deterministic ids.

``Desk`` builds envelopes exactly as ``edge.store.writer.Writer`` does, without any I/O.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import datetime, timedelta
from typing import Any

import pytest
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
    Context,
    Finish,
    Hold,
    Issue,
    MarkAbsent,
    OpenCounter,
    Recall,
    Refused,
    Transfer,
    decide,
    rollover,
)
from edge.domain.model import SiteConfig
from edge.domain.state import State, Ticket, apply
from edge.domain.views import counter_rows, snapshot, stats_view, ticket_brief, ticket_view
from edge.protocol import ENVELOPE_VERSION, Envelope
from edge.store.store import EventStore
from edge.store.writer import Writer

# --- harness ---------------------------------------------------------------------------------


class Desk:
    """State + decide + apply, driven like the writer drives them, with a manual clock."""

    def __init__(self, config: SiteConfig | None = None, start: datetime | None = None) -> None:
        self.config = config or small_site()
        self.clock = ManualClock(start or morning())
        self.state = State(self.config)
        self.log: list[Envelope] = []
        self._n = 0
        self.tick()

    def _fresh(self, prefix: str) -> str:
        self._n += 1
        return f"{prefix}-{self._n:05d}"

    def new_id(self) -> str:
        return self._fresh("id")

    def new_token(self) -> str:
        return self._fresh("tok")

    def _emit(self, kind: str, data: dict[str, Any], now: datetime) -> Envelope:
        day = data["day"] if kind == "DayOpened" else self.state.day
        env = Envelope(ENVELOPE_VERSION, self.config.site, self.state.seq + 1, self.new_id(),
                       now.isoformat(), str(day), kind, data)
        apply(self.state, env)
        self.log.append(env)
        return env

    def tick(self) -> list[Envelope]:
        """Only the business-day rollover (what the writer does with ``None``)."""
        now = self.clock.now()
        return [self._emit(k, d, now) for k, d in rollover(self.state, now)]

    def run(self, cmd: Command) -> list[Envelope]:
        out = self.tick()
        now = self.clock.now()
        decided = decide(self.state, cmd, Context(now, self.new_id, self.new_token))
        return out + [self._emit(k, d, now) for k, d in decided]

    def types(self, cmd: Command) -> list[str]:
        return [e.type for e in self.run(cmd)]

    def refuse(self, cmd: Command) -> Refused:
        """Run a command that must be refused; nothing may change."""
        self.tick()
        seq = self.state.seq
        before = json.dumps(self.snap(), sort_keys=True)
        with pytest.raises(Refused) as info:
            self.run(cmd)
        assert self.state.seq == seq
        assert json.dumps(self.snap(), sort_keys=True) == before
        return info.value

    def issue(self, service: str = "A", **kw: Any) -> Ticket:
        envs = self.run(Issue(service, **kw))
        assert envs[-1].type == "TicketIssued"
        return self.state.tickets[envs[-1].data["ticket"]]

    def open(self, *counters: str) -> None:
        for c in counters:
            self.run(OpenCounter(c))

    def call_next(self, counter: str) -> Ticket:
        envs = self.run(CallNext(counter))
        assert envs[-1].type == "TicketCalled"
        return self.state.tickets[envs[-1].data["ticket"]]

    def advance(self, seconds: float) -> None:
        self.clock.advance(seconds)

    def snap(self) -> dict[str, Any]:
        return snapshot(self.state, self.clock.now())

    def row(self, code: str) -> dict[str, Any]:
        rows: list[dict[str, Any]] = [r for r in self.snap()["services"] if r["code"] == code]
        assert len(rows) == 1
        return rows[0]

    def stats(self, code: str) -> dict[str, Any]:
        services: dict[str, dict[str, Any]] = stats_view(self.state)["services"]
        return services[code]


def at(hh: int, mm: int, day: int = 21) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=TZ)


def with_service(config: SiteConfig, code: str, **changes: Any) -> SiteConfig:
    services = dict(config.services)
    services[code] = dataclasses.replace(services[code], **changes)
    return dataclasses.replace(config, services=services)


def numbers(tickets: list[Ticket]) -> list[int]:
    return [t.number for t in tickets]


# --- numbering (Q1) --------------------------------------------------------------------------


def test_first_command_opens_the_business_day() -> None:
    d = Desk()
    assert [(e.seq, e.type, e.day, e.data) for e in d.log] == [
        (1, "DayOpened", "2026-11-21", {"day": "2026-11-21"}),
    ]
    assert d.state.day == "2026-11-21"
    assert d.state.day_open is True
    assert d.log[0].at == "2026-11-21T08:30:00+09:00"


def test_numbers_are_consecutive_within_each_service_range() -> None:
    d = Desk()
    issued = [d.issue("A"), d.issue("A"), d.issue("B"), d.issue("A"), d.issue("B")]
    assert numbers(issued) == [1, 2, 201, 3, 202]
    assert [t.lap for t in issued] == [1, 1, 1, 1, 1]
    assert [t.stage for t in issued] == [1, 1, 1, 1, 1]
    assert [t.queue_seq for t in issued] == [2, 3, 4, 5, 6]
    assert d.state.services["A"].issued == 3
    assert d.state.services["B"].last_number == 202
    ev = d.log[-1]
    assert ev.type == "TicketIssued"
    assert ev.data == {"ticket": issued[-1].id, "service": "B", "number": 202, "lap": 1,
                       "token": issued[-1].token, "channel": "kiosk", "lang": "ja",
                       "priority": False}


def test_numbering_restarts_every_business_day() -> None:
    d = Desk()
    first = [d.issue("A"), d.issue("A"), d.issue("B")]
    d.clock.set(at(8, 30, day=22))
    envs = d.run(Issue("A"))
    assert [e.type for e in envs] == ["DayClosed", "DayOpened", "TicketIssued"]
    assert envs[0].day == "2026-11-21"
    assert envs[0].data == {"day": "2026-11-21", "reason": "rollover",
                            "expired": sorted(t.id for t in first)}
    assert envs[1].day == envs[2].day == "2026-11-22"
    assert envs[2].data["number"] == 1
    assert envs[2].data["lap"] == 1
    assert d.issue("B").number == 201
    assert all(t.state == "expired" for t in first)
    assert set(d.state.tickets) == {envs[2].data["ticket"], d.log[-1].data["ticket"]}
    # yesterday's token is unknown today
    assert d.refuse(Cancel(token=first[0].token)).code == "unknown_ticket"


def test_wrap_around_continues_at_first_and_skips_live_numbers() -> None:
    d = Desk(small_site(range_size=5))
    ts = [d.issue("A") for _ in range(5)]
    assert numbers(ts) == [1, 2, 3, 4, 5]
    d.open("1")
    d.run(CallNumber("1", 1))
    d.run(Finish("1"))
    d.run(Cancel(number=3))
    assert sorted(d.state.live_numbers) == [2, 4, 5]
    again = d.issue("A")
    assert (again.number, again.lap) == (1, 2)
    again2 = d.issue("A")
    assert (again2.number, again2.lap) == (3, 2)
    assert d.state.tickets[ts[0].id].state == "finished"  # the old ticket keeps its history
    assert d.refuse(Issue("A")).code == "service_full"
    # freeing 2 lets the lap continue where it was
    d.run(Cancel(number=2))
    third = d.issue("A")
    assert (third.number, third.lap) == (2, 3)
    # by number, the live ticket is found, not the cancelled one of an earlier lap
    assert d.state.live_numbers[2] == third.id


def test_service_full_when_every_number_is_live() -> None:
    d = Desk(small_site(range_size=3))
    assert numbers([d.issue("B") for _ in range(3)]) == [201, 202, 203]
    r = d.refuse(Issue("B"))
    assert (r.code, r.status) == ("service_full", 409)
    assert r.message_ja
    # another service is unaffected
    assert d.issue("A").number == 1


def test_service_full_without_wrap_even_when_numbers_are_free() -> None:
    d = Desk(small_site(range_size=3, wrap=False))
    d.open("1")
    for _ in range(3):
        d.issue("A")
    for n in (1, 2, 3):
        d.run(CallNumber("1", n))
    d.run(Finish("1"))
    assert d.state.live_numbers == {}
    assert d.refuse(Issue("A")).code == "service_full"


def test_daily_limit_counts_issued_tickets_not_live_ones() -> None:
    d = Desk(with_service(small_site(), "A", daily_limit=2))
    d.issue("A")
    d.issue("A")
    assert d.row("A")["status"] == "full"
    assert d.row("B")["status"] == "open"
    d.run(Cancel(number=1))
    d.run(Cancel(number=2))
    r = d.refuse(Issue("A"))
    assert r.code == "service_full"
    assert d.state.services["A"].issued == 2
    # the limit is per day
    d.clock.set(at(9, 0, day=22))
    assert d.issue("A").number == 1
    assert d.row("A")["status"] == "open"


def test_issue_refusals_and_reservation_priority() -> None:
    d = Desk()
    assert (d.refuse(Issue("Z")).code, d.refuse(Issue("Z")).status) == ("unknown_service", 404)
    assert d.refuse(Issue("C")).code == "not_issuable"
    assert d.refuse(Issue("A", channel="fax")).code == "bad_channel"
    assert d.issue("A", channel="reservation", reservation="a" * 64).priority is True
    # only a booking makes a reservation ticket, and one booking one ticket a day
    assert d.refuse(Issue("A", channel="reservation")).code == "reservation_required"
    assert d.refuse(Issue("A", channel="reservation", reservation="a" * 64)).code == \
        "already_checked_in"
    assert d.refuse(Issue("A", channel="web")).code == "web_not_offered"
    web = d.issue("B", channel="web", lang="en")
    assert (web.priority, web.channel, web.lang) == (False, "web", "en")
    assert d.issue("A", priority=True).priority is True


# --- call next (order rule in edge/domain/commands.py) ---------------------------------------


def test_call_next_needs_an_open_known_counter_and_someone_waiting() -> None:
    d = Desk()
    assert (d.refuse(CallNext("9")).code, d.refuse(CallNext("9")).status) == (
        "unknown_counter", 404)
    assert d.refuse(CallNext("1")).code == "counter_closed"
    d.open("1")
    assert d.refuse(CallNext("1")).code == "queue_empty"
    d.issue("B")
    d.open("3")
    assert d.refuse(CallNext("3")).code == "queue_empty"  # counter 3 serves only C


def test_call_next_follows_counter_service_priority() -> None:
    d = Desk()
    d.open("1", "2")
    b1 = d.issue("B")
    a1 = d.issue("A")
    b2 = d.issue("B", priority=True)
    # counter 1 serves A before B; a priority ticket does not beat the service order
    assert d.call_next("1").id == a1.id
    # counter 2 serves B before A: priority first within B, then the oldest
    assert d.call_next("2").id == b2.id
    assert d.call_next("2").id == b1.id


def test_priority_and_reservations_first_then_oldest_within_a_service() -> None:
    d = Desk()
    d.open("1")
    plain1 = d.issue("A")
    d.advance(60)
    resv = d.issue("A", channel="reservation", reservation="b" * 64)
    d.advance(60)
    plain2 = d.issue("A")
    d.advance(60)
    prio = d.issue("A", priority=True)
    order = [d.call_next("1").id for _ in range(4)]
    assert order == [resv.id, prio.id, plain1.id, plain2.id]


def test_call_next_while_serving_finishes_the_current_ticket() -> None:
    d = Desk()
    d.open("1")
    a1, a2 = d.issue("A"), d.issue("A")
    d.run(CallNext("1"))
    envs = d.run(CallNext("1"))
    assert [(e.type, e.data) for e in envs] == [
        ("TicketFinished", {"ticket": a1.id, "counter": "1", "auto": True}),
        ("TicketCalled", {"ticket": a2.id, "counter": "1", "reason": "next", "number": 2}),
    ]
    assert a1.state == "finished"
    assert a2.state == "called"
    assert d.state.counters["1"].current == a2.id


def test_transferred_ticket_queues_from_its_transfer_time() -> None:
    d = Desk()
    d.open("1", "2")
    a1 = d.issue("A")
    d.call_next("1")
    d.advance(300)
    b1 = d.issue("B")  # arrives before the transfer below
    d.advance(300)
    d.run(Transfer("1", to_service="B"))
    b2 = d.issue("B")
    assert [d.call_next("2").id for _ in range(3)] == [b1.id, a1.id, b2.id]


def test_transfer_to_a_named_counter_is_called_there_first_and_only_there() -> None:
    d = Desk()
    d.open("1", "2")
    b_old = d.issue("B", priority=True)
    a1 = d.issue("A")
    d.run(CallNumber("1", a1.number))
    d.run(Transfer("1", to_counter="2"))
    assert (a1.service, a1.target_counter, a1.state) == ("A", "2", "waiting")
    assert d.state.counters["1"].current is None
    # counter 1 serves A but the ticket is meant for counter 2
    d.run(CallNumber("1", b_old.number))
    d.run(Finish("1"))
    assert d.refuse(CallNext("1")).code == "queue_empty"
    b_new = d.issue("B", priority=True)
    # counter 2 serves B first and b_new is a priority ticket, yet the named transfer wins
    called = d.call_next("2")
    assert called.id == a1.id
    assert called.target_counter is None
    assert d.call_next("2").id == b_new.id


def test_named_transfers_are_called_oldest_transfer_first() -> None:
    """Rule 1 of the docstring: oldest transfer first, whatever the service."""
    d = Desk()
    d.open("1", "2")
    a1 = d.issue("A")
    b1 = d.issue("B")
    d.run(CallNumber("1", a1.number))
    d.run(Transfer("1", to_counter="2"))  # a1 -> counter 2, service A (its 2nd service)
    d.advance(60)
    d.run(CallNumber("1", b1.number))
    d.run(Transfer("1", to_counter="2"))  # b1 -> counter 2, service B (its 1st service)
    assert (a1.service, b1.service) == ("A", "B")
    assert [d.call_next("2").id for _ in range(2)] == [a1.id, b1.id]


# --- recall, call a number, hold, absence, cancel, finish --------------------------------------


def test_recall_repeats_the_call_without_changing_the_ticket() -> None:
    d = Desk()
    d.open("1")
    assert d.refuse(Recall("1")).code == "no_current_ticket"
    a1 = d.issue("A")
    d.call_next("1")
    d.advance(30)
    envs = d.run(Recall("1"))
    assert [(e.type, e.data) for e in envs] == [
        ("TicketRecalled", {"ticket": a1.id, "counter": "1", "number": 1}),
    ]
    assert (a1.state, a1.calls, a1.called_at) == ("called", 2, morning())
    assert [(c.number, c.counter, c.at) for c in d.state.recent_calls] == [
        (1, "1", morning() + timedelta(seconds=30)), (1, "1", morning()),
    ]
    assert d.snap()["calling"] == [{"counter": "1", "number": 1, "service": "A", "calls": 2,
                                    "called_at": "2026-11-21T08:30:00+09:00"}]


def test_call_number_calls_waiting_held_and_absent_tickets() -> None:
    d = Desk()
    d.open("1", "2")
    a1, a2, a3 = d.issue("A"), d.issue("A"), d.issue("A")
    envs = d.run(CallNumber("1", 3))
    assert [(e.type, e.data["reason"]) for e in envs] == [("TicketCalled", "number")]
    assert a3.state == "called"
    assert list(d.state.waiting["A"]) == [a1.id, a2.id]
    d.run(Hold("1"))
    envs = d.run(CallNumber("2", 3))
    assert [(e.type, e.data["reason"], e.data["counter"]) for e in envs] == [
        ("TicketCalled", "held", "2")]
    d.run(MarkAbsent("2"))
    envs = d.run(CallNumber("1", 3))
    assert [(e.type, e.data["reason"]) for e in envs] == [("TicketCalled", "absence_cleared")]
    assert (a3.state, a3.counter, a3.calls) == ("called", "1", 3)


def test_call_number_refusals() -> None:
    d = Desk()
    d.open("1", "2")
    d.issue("A")
    d.issue("A")
    d.run(CallNumber("1", 1))
    r = d.refuse(CallNumber("2", 1))
    assert (r.code, r.message) == ("being_served", "Number 1 is being called at Counter 1")
    assert r.message_ja == "1番は1番で呼び出し中です"  # the counter's configured name, 「1番」 here
    r = d.refuse(CallNumber("1", 1))
    assert (r.code, r.message) == ("being_served", "Number 1 is being called at this counter")
    d.run(Finish("1"))
    assert d.refuse(CallNumber("2", 1)).code == "already_served"
    d.run(Cancel(number=2))
    assert d.refuse(CallNumber("2", 2)).code == "ticket_cancelled"
    r = d.refuse(CallNumber("2", 3))
    assert (r.code, r.status) == ("unknown_ticket", 404)
    r = d.refuse(CallNumber("2", 150))
    assert (r.code, r.status) == ("number_out_of_range", 422)
    assert d.refuse(CallNumber("3", 1)).code == "counter_closed"


def test_hold_and_call_held() -> None:
    d = Desk()
    d.open("1", "2")
    a1, a2 = d.issue("A"), d.issue("A")
    assert d.refuse(Hold("1")).code == "no_current_ticket"
    d.call_next("1")
    assert d.types(Hold("1")) == ["TicketHeld"]
    assert (a1.state, a1.counter) == ("held", "1")
    assert d.state.counters["1"].current is None
    assert d.snap()["held"] == [{"number": 1, "service": "A", "counter": "1", "ticket": a1.id}]
    assert [r["held"] for r in counter_rows(d.state)] == [[1], [], []]
    assert 1 in d.state.live_numbers
    assert d.refuse(CallHeld("1", 2)).code == "not_held"
    assert d.call_next("1").id == a2.id  # held tickets are not in the queue
    # another counter may call the held ticket back
    envs = d.run(CallHeld("2", 1))
    assert [(e.type, e.data["reason"]) for e in envs] == [("TicketCalled", "held")]
    assert (a1.state, a1.counter, a1.calls) == ("called", "2", 2)
    assert d.snap()["held"] == []


def test_absent_and_clear_absence_by_number_and_by_token() -> None:
    d = Desk()
    d.open("1")
    a1, a2 = d.issue("A"), d.issue("A")
    d.call_next("1")
    assert d.types(MarkAbsent("1")) == ["TicketAbsent"]
    assert a1.state == "absent"
    assert d.state.counters["1"].current is None
    assert d.snap()["absent"] == [{"number": 1, "service": "A", "counter": "1",
                                   "ticket": a1.id}]
    assert d.refuse(ClearAbsence("1", number=2)).code == "not_absent"
    envs = d.run(ClearAbsence("1", number=1))
    assert [(e.type, e.data) for e in envs] == [
        ("TicketCalled", {"ticket": a1.id, "counter": "1", "reason": "absence_cleared",
                          "number": 1}),
    ]
    assert d.snap()["absent"] == []
    # by token (scanned QR); the current ticket is finished first
    d.run(MarkAbsent("1"))
    d.call_next("1")
    assert a2.state == "called"
    envs = d.run(ClearAbsence("1", token=a1.token))
    assert [e.type for e in envs] == ["TicketFinished", "TicketCalled"]
    assert (a1.state, a2.state) == ("called", "finished")
    r = d.refuse(ClearAbsence("1", token="not-a-token"))
    assert (r.code, r.status) == ("unknown_ticket", 404)
    r = d.refuse(ClearAbsence("1"))
    assert (r.code, r.status) == ("missing_ticket", 422)


def test_cancel_only_uncalled_tickets() -> None:
    d = Desk()
    d.open("1")
    a1, a2, a3 = d.issue("A"), d.issue("A"), d.issue("A")
    envs = d.run(Cancel(number=2, counter="1"))
    assert [(e.type, e.data) for e in envs] == [
        ("TicketCancelled", {"ticket": a2.id, "counter": "1"})]
    assert a2.state == "cancelled"
    assert 2 not in d.state.live_numbers
    assert list(d.state.waiting["A"]) == [a1.id, a3.id]
    assert d.types(Cancel(token=a3.token)) == ["TicketCancelled"]
    assert d.refuse(Cancel(number=2)).code == "ticket_cancelled"
    d.call_next("1")
    assert d.refuse(Cancel(number=1)).code == "already_called"
    d.run(Hold("1"))
    assert d.refuse(Cancel(number=1)).code == "already_called"
    d.run(CallHeld("1", 1))
    d.run(MarkAbsent("1"))
    assert d.refuse(Cancel(token=a1.token)).code == "already_called"
    d.run(ClearAbsence("1", number=1))
    d.run(Finish("1"))
    assert d.refuse(Cancel(number=1)).code == "already_served"
    assert d.refuse(Cancel()).code == "missing_ticket"


def test_finish_releases_counter_and_number() -> None:
    d = Desk()
    d.open("1")
    assert d.refuse(Finish("1")).code == "no_current_ticket"
    a1 = d.issue("A")
    d.call_next("1")
    d.advance(250)
    envs = d.run(Finish("1"))
    assert [(e.type, e.data) for e in envs] == [
        ("TicketFinished", {"ticket": a1.id, "counter": "1"})]
    assert (a1.state, a1.finished_at) == ("finished", morning() + timedelta(seconds=250))
    assert d.state.counters["1"].current is None
    assert d.state.live_numbers == {}
    assert d.state.stats["A"].handling == [250.0]
    assert d.snap()["calling"] == []


# --- transfer and second wait (Q11, Q15) -------------------------------------------------------


def test_transfer_keeps_number_and_counts_as_second_wait() -> None:
    d = Desk()
    d.open("1", "3")
    a1 = d.issue("A")
    d.issue("A")
    d.advance(120)
    d.call_next("1")
    d.advance(180)
    envs = d.run(Transfer("1", to_service="C"))
    assert [(e.type, e.data) for e in envs] == [
        ("TicketTransferred", {"ticket": a1.id, "counter": "1", "to_service": "C",
                               "to_counter": None, "stage": 2, "number": 1}),
    ]
    assert (a1.number, a1.service, a1.origin_service, a1.stage, a1.state) == (
        1, "C", "A", 2, "waiting")
    assert a1.issued_at == morning()
    assert a1.queued_at == morning() + timedelta(seconds=300)
    assert (a1.called_at, a1.calls, a1.counter) == (None, 0, None)
    assert d.state.counters["1"].current is None
    assert d.state.live_numbers[1] == a1.id
    assert d.state.stats["A"].handling == [180.0]
    c_row, a_row = d.row("C"), d.row("A")
    assert (c_row["waiting"], c_row["second_wait"]) == (1, 1)
    assert (a_row["waiting"], a_row["second_wait"]) == (1, 0)
    assert c_row["queue"] == [{"number": 1, "stage": 2, "priority": False,
                               "target_counter": None,
                               "queued_at": "2026-11-21T08:35:00+09:00"}]
    # second stage: called at counter 3, then sent on again (stage 3)
    d.advance(60)
    called = d.call_next("3")
    assert called.id == a1.id
    assert d.row("C")["second_wait"] == 0
    assert d.state.stats["C"].wait_sum == 60.0
    d.run(Transfer("3", to_service="B"))
    assert (a1.stage, a1.service) == (3, "B")
    assert d.row("B")["second_wait"] == 1
    assert d.snap()["services"][0]["issued"] == 2  # transfers are not issues


def test_transfer_to_a_counter_picks_its_service() -> None:
    d = Desk()
    d.open("1")
    a1 = d.issue("A")
    d.call_next("1")
    d.run(Transfer("1", to_counter="3"))  # counter 3 serves only C
    assert (a1.service, a1.target_counter, a1.stage) == ("C", "3", 2)
    assert d.row("C")["queue"][0]["target_counter"] == "3"


def test_transfer_refusals() -> None:
    d = Desk()
    d.open("1")
    assert d.refuse(Transfer("1", to_service="B")).code == "no_current_ticket"
    d.issue("A")
    d.call_next("1")
    assert d.refuse(Transfer("1")).code == "missing_target"
    assert d.refuse(Transfer("1", to_service="Z")).code == "unknown_service"
    assert d.refuse(Transfer("1", to_counter="9")).code == "unknown_counter"
    assert d.refuse(Transfer("1", to_service="A", to_counter="3")).code == (
        "counter_lacks_service")
    assert d.refuse(Transfer("1", to_counter="1")).code == "transfer_to_self"


# --- counters and the business day -------------------------------------------------------------


def test_open_and_close_counter() -> None:
    d = Desk()
    assert d.types(OpenCounter("1")) == ["CounterOpened"]
    assert d.state.counters["1"].open is True
    assert d.refuse(OpenCounter("1")).code == "counter_open"
    assert d.refuse(OpenCounter("9")).code == "unknown_counter"
    d.issue("A")
    d.call_next("1")
    r = d.refuse(CloseCounter("1"))
    assert (r.code, r.message) == ("counter_busy", "Counter 1 is serving number 1; finish it first")
    d.run(Finish("1"))
    assert d.types(CloseCounter("1")) == ["CounterClosed"]
    assert d.state.counters["1"].open is False
    assert d.refuse(CloseCounter("1")).code == "counter_closed"


def test_close_day_expires_live_tickets_and_refuses_until_the_next_date() -> None:
    d = Desk()
    d.open("1", "2")
    a1, a2, a3, b1 = d.issue("A"), d.issue("A"), d.issue("A"), d.issue("B")
    d.call_next("1")  # a1 called
    d.run(Finish("1"))
    d.call_next("1")  # a2 called
    d.call_next("2")  # b1 called
    d.run(Hold("2"))
    d.advance(3600)
    envs = d.run(CloseDay())
    assert [(e.type, e.data) for e in envs] == [
        ("DayClosed", {"day": "2026-11-21", "reason": "staff",
                       "expired": sorted([a2.id, a3.id, b1.id])}),
    ]
    assert [t.state for t in (a1, a2, a3, b1)] == ["finished", "expired", "expired", "expired"]
    assert a3.finished_at == morning() + timedelta(seconds=3600)
    assert d.state.live_numbers == {}
    assert all(not c.open and c.current is None for c in d.state.counters.values())
    assert d.snap()["day_open"] is False
    assert {r["status"] for r in d.snap()["services"]} == {"closed"}
    for cmd in (Issue("A"), OpenCounter("1"), CloseDay(), CallNext("1"),
                Cancel(number=3)):
        r = d.refuse(cmd)
        assert (r.code, r.status) == ("day_closed", 409)
    d.clock.set(at(23, 59))
    assert d.refuse(Issue("A")).code == "day_closed"
    d.clock.set(at(8, 30, day=22))
    envs = d.run(Issue("A"))
    assert [e.type for e in envs] == ["DayOpened", "TicketIssued"]  # no second DayClosed
    assert envs[-1].data["number"] == 1


# --- statistics (S1) ---------------------------------------------------------------------------


def test_statistics_issued_per_hour_waits_and_handling() -> None:
    d = Desk()
    d.issue("A")  # 08:30
    d.advance(900)
    d.issue("A")  # 08:45
    d.advance(1500)
    d.issue("B")  # 09:10
    d.open("1")
    d.call_next("1")  # A1 at 09:10, waited 2400 s
    d.advance(300)
    d.call_next("1")  # A1 finished after 300 s; A2 at 09:15 waited 1800 s
    d.advance(600)
    d.run(Finish("1"))  # A2 handled in 600 s
    assert d.stats("A") == {"issued": 2, "by_hour": {"08": 2}, "wait_avg_s": 2100.0,
                            "wait_max_s": 2400.0, "handling_avg_s": 450.0, "handled": 2}
    assert d.stats("B") == {"issued": 1, "by_hour": {"09": 1}, "wait_avg_s": None,
                            "wait_max_s": None, "handling_avg_s": None, "handled": 0}
    assert d.stats("C") == {"issued": 0, "by_hour": {}, "wait_avg_s": None,
                            "wait_max_s": None, "handling_avg_s": None, "handled": 0}
    full = stats_view(d.state)
    assert (full["day"], full["issued_total"]) == ("2026-11-21", 3)
    # a recall does not count as a second wait sample
    d.issue("A")
    d.advance(100)
    d.call_next("1")
    d.advance(100)
    d.run(Recall("1"))
    assert d.stats("A")["wait_avg_s"] == round((2400 + 1800 + 100) / 3, 1)


# --- estimates ---------------------------------------------------------------------------------


def test_estimate_is_none_without_an_open_counter() -> None:
    d = Desk()
    t = d.issue("A")
    assert d.row("A")["estimate"] is None
    assert ticket_view(d.state, t)["estimate"] is None


def test_estimate_range_grows_with_people_ahead_and_shrinks_with_counters() -> None:
    d = Desk()  # no calls yet: the pace is the configured handling time, 300 s
    ts = [d.issue("A") for _ in range(3)]
    d.open("1")  # free: it takes the first at once, then 3 calls for a 4th visitor
    assert d.row("A")["estimate"] == {"low_s": 368, "high_s": 1229}
    views = [ticket_view(d.state, t) for t in ts]
    assert [v["ahead"] for v in views] == [0, 1, 2]
    assert [v["estimate"] for v in views] == [
        {"low_s": 0, "high_s": 0}, {"low_s": 62, "high_s": 412},
        {"low_s": 208, "high_s": 826}]
    d.open("2")  # counter 2 serves A too
    assert d.row("A")["estimate"] == {"low_s": 104, "high_s": 413}
    d.issue("A")
    assert d.row("A")["estimate"] == {"low_s": 184, "high_s": 615}
    d.open("3")  # counter 3 does not serve A
    assert d.row("A")["estimate"] == {"low_s": 184, "high_s": 615}
    assert d.row("A")["open_counters"] == 2


def busy_calls(d: Desk, gap_s: float, calls: int, counter: str = "1") -> None:
    """``calls`` calls of A at ``counter``, ``gap_s`` apart, people waiting all along."""
    for _ in range(calls + 2):
        d.issue("A")
    d.call_next(counter)  # the counter was free: no pace sample
    for _ in range(calls):
        d.advance(gap_s)
        d.call_next(counter)


def test_estimate_follows_todays_pace() -> None:
    d = Desk()
    d.open("1")
    busy_calls(d, 60, 30)  # 30 calls 60 s apart at 1 counter; 1 still waiting
    assert list(d.state.stats["A"].pace) == [60.0] * 30
    # 2 calls away; the prior is today's handling times (60 s too), not the configured 300 s
    low, high = d.row("A")["estimate"].values()
    assert 90 < low < 120 < high < 150


def test_estimate_divides_the_pace_by_the_counters_open_now() -> None:
    d = Desk()
    d.open("1")
    busy_calls(d, 60, 30)
    one = d.row("A")["estimate"]
    d.open("2")  # also serves A: free, so one call fewer, and twice the counters
    two = d.row("A")["estimate"]
    assert two["high_s"] < one["high_s"] / 2
    assert two["low_s"] < one["low_s"] / 2


def test_estimate_falls_back_to_history_by_weekday_and_hour() -> None:
    d = Desk()  # Saturday 21st, 8:30
    d.open("1")
    busy_calls(d, 100, 10)
    d.run(CloseDay())
    weekday = datetime.fromisoformat("2026-11-21").weekday()
    hist = d.state.history_pace[("A", weekday, 8)]
    assert (hist.n, hist.total) == (10, 1000.0)
    assert d.state.history_handling["A"] == (100.0, 10)
    d.clock.set(at(8, 30, day=28))  # the same weekday: this hour's history, 100 s a call
    d.issue("A")
    d.issue("A")
    d.open("1")
    same_day = d.row("A")["estimate"]
    d.clock.set(at(8, 30, day=29))  # another weekday: past days' handling times, 100 s too
    d.issue("A")
    d.issue("A")
    d.open("1")
    other = d.row("A")["estimate"]  # the same mean, but a spread assumed, not seen
    assert other["low_s"] < same_day["low_s"] < 200 < same_day["high_s"] < other["high_s"]


# --- backyard (Q16) ----------------------------------------------------------------------------


def test_backyard_wait_is_time_since_next_ticket_was_issued() -> None:
    d = Desk()
    assert d.row("A")["next"] is None
    d.issue("A")  # 08:30
    d.advance(600)
    d.issue("A")  # 08:40
    d.advance(1200)  # 09:00
    assert d.row("A")["next"] == {"number": 1, "issued_at": "2026-11-21T08:30:00+09:00",
                                  "wait_s": 1800}
    d.issue("A", priority=True)  # 09:00, number 3
    d.advance(60)
    assert d.row("A")["next"] == {"number": 3, "issued_at": "2026-11-21T09:00:00+09:00",
                                  "wait_s": 60}
    d.open("1")
    d.run(CallNumber("1", 1))
    d.advance(240)
    d.run(Transfer("1", to_service="C"))  # 09:05
    d.advance(300)  # 09:10: the transferred ticket was issued at 08:30
    assert d.row("C")["next"] == {"number": 1, "issued_at": "2026-11-21T08:30:00+09:00",
                                  "wait_s": 2400}
    assert (d.row("C")["waiting"], d.row("C")["second_wait"]) == (1, 1)


# --- tokens --------------------------------------------------------------------------------------


def test_token_is_random_128_bits_and_never_in_public_views() -> None:
    clock = ManualClock(morning())
    writer = Writer(EventStore(":memory:", "test-site"), small_site(range_size=200), clock)
    try:
        tokens: list[str] = []
        for i in range(300):
            out = writer.execute_sync(Issue("A" if i % 2 else "B"))
            assert out.refused is None
            assert out.ticket is not None
            tokens.append(out.ticket["token"])
        assert len(set(tokens)) == 300
        for tok in tokens:
            raw = base64.urlsafe_b64decode(tok + "==")
            assert len(raw) == 16
        # no common prefix: not a counter or a timestamp
        assert len({tok[:4] for tok in tokens}) > 250
        state = writer.state
        blob = json.dumps(snapshot(state, clock.now()))
        assert not any(tok in blob for tok in tokens)
        blob = json.dumps([ticket_brief(t) for t in state.tickets.values()])
        assert not any(tok in blob for tok in tokens)
        writer.execute_sync(OpenCounter("1"))
        called = writer.execute_sync(CallNext("1"))
        assert called.ticket is not None
        assert "token" not in called.ticket  # only the issuer gets the token back
        assert "token" not in json.dumps(stats_view(state))
    finally:
        writer.close()


def test_decide_does_not_mutate_state() -> None:
    d = Desk()
    d.open("1")
    d.issue("A")
    d.call_next("1")
    d.issue("B")
    before = json.dumps(d.snap(), sort_keys=True)
    seq = d.state.seq
    ctx = Context(d.clock.now(), d.new_id, d.new_token)
    for cmd in (Issue("A"), CallNext("1"), Transfer("1", to_service="C"), Hold("1"),
                CloseDay(), Cancel(number=201), Finish("1")):
        assert decide(d.state, cmd, ctx)
    assert d.state.seq == seq
    assert json.dumps(d.snap(), sort_keys=True) == before
