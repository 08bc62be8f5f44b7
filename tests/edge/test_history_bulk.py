"""The bulk-written history (``edge.bench.history_bulk``) is a log the edge could have written.

Why it matters: the five-year start-up and backup figures, and the start-up-independent-of-
history test, mean nothing if the edge folds a log it could never have produced. So twenty
business days are written in bulk and checked against the domain itself: every event folds with
``apply``, each ``DayClosed`` expires exactly the tickets still live, the projections equal what
the fold says and what ``rebuild`` recomputes, and a real ``Writer`` carries on the next day.
"""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from edge.bench.history_bulk import business_days, first_day, write_history
from edge.config import load_site_config
from edge.domain.clock import ManualClock
from edge.domain.commands import CallNext, Issue, OpenCounter
from edge.domain.model import SiteConfig
from edge.domain.state import State, apply
from edge.store.store import EventStore
from edge.store.writer import Writer

SITE_TOML = Path(__file__).resolve().parents[2] / "sites" / "nerima-main.toml"
START = date(2026, 9, 28)
DAYS = 20


@pytest.fixture(scope="module")
def config() -> SiteConfig:
    return load_site_config(SITE_TOML)


@pytest.fixture(scope="module")
def history(tmp_path_factory: pytest.TempPathFactory, config: SiteConfig) -> tuple[Path, int]:
    db = tmp_path_factory.mktemp("history") / "edge.db"
    events = write_history(db, config, days=DAYS, tickets_per_day=400, start_day=START, seed=11,
                           progress=False)
    return db, events


def _fold(store: EventStore, config: SiteConfig) -> dict[str, Any]:
    """Fold the log with ``apply``, checking each day close, and return what the projections
    must hold, collected without ``Rows`` (the class ``rebuild`` uses)."""
    state = State(config)
    tickets: dict[str, dict[str, Any]] = {}
    issued: Counter[tuple[str, str]] = Counter()
    last: dict[tuple[str, str], tuple[int, int]] = {}
    for ev in store.events():
        assert ev.day == ev.at[:10], ev
        assert datetime.fromisoformat(ev.at).utcoffset() == timedelta(hours=9), ev
        if ev.type == "DayClosed":
            live = sorted(t.id for t in state.tickets.values() if t.live)
            assert ev.data["expired"] == live, ev.day
            assert not any(c.open for c in state.counters.values()), ev.day
        if ev.type == "TicketIssued":
            svc = config.services[ev.data["service"]]
            assert svc.first <= ev.data["number"] <= svc.last
            issued[(ev.day, ev.data["service"])] += 1
            last[(ev.day, ev.data["service"])] = (ev.data["number"], ev.data["lap"])
        apply(state, ev)
        if ev.type == "DayClosed":
            tickets.update({t.id: t.to_row() for t in state.tickets.values()})
    return {"state": state, "tickets": tickets, "issued": issued, "last": last}


def test_bulk_log_is_gap_free_unique_and_on_business_days(history: tuple[Path, int],
                                                          config: SiteConfig) -> None:
    db, events = history
    store = EventStore(db, config.site, durable=False)
    try:
        conn = store.conn
        assert conn.execute("SELECT min(seq), max(seq), count(*), count(DISTINCT id) "
                            "FROM events").fetchone() == (1, events, events, events)
        assert events > DAYS * 400 * 3
        assert conn.execute("SELECT count(*) FROM outbox").fetchone() == (0,)
        days = [d for (d,) in conn.execute("SELECT DISTINCT day FROM events ORDER BY day")]
        assert days == [d.isoformat() for d in business_days(config, START, DAYS)]
        assert all(date.fromisoformat(d).weekday() < 5 for d in days)
        firsts = conn.execute("SELECT type FROM events WHERE seq IN (SELECT min(seq) FROM events "
                              "GROUP BY day)").fetchall()
        lasts = conn.execute("SELECT type FROM events WHERE seq IN (SELECT max(seq) FROM events "
                             "GROUP BY day)").fetchall()
        assert set(firsts) == {("DayOpened",)}
        assert set(lasts) == {("DayClosed",)}
        issued = [json.loads(d) for (d,) in
                  conn.execute("SELECT data FROM events WHERE type = 'TicketIssued'")]
        assert len({d["ticket"] for d in issued}) == len(issued)
        assert len({d["token"] for d in issued}) == len(issued)
        assert store.meta("day") == json.dumps({"day": days[-1], "open": False})
    finally:
        store.close()


def test_projections_equal_the_fold_and_a_rebuild(history: tuple[Path, int],
                                                  config: SiteConfig) -> None:
    db, _ = history
    store = EventStore(db, config.site, durable=False)
    try:
        written = store.dump_projections()
        fold = _fold(store, config)
        rows = {r[0]: r for r in written["tickets"]}
        assert len(rows) == len(fold["tickets"]) == sum(fold["issued"].values())
        cols = [c[1] for c in store.conn.execute("PRAGMA table_info(tickets)")]
        for tid, row in fold["tickets"].items():
            assert rows[tid] == tuple(row[c] for c in cols), tid
        assert {(d, s): (n, lap, issued[0]) for d, s, n, lap, *issued in
                written["service_days"]} == {
            k: (*fold["last"][k], fold["issued"][k]) for k in fold["issued"]}
        assert all(open_ == 0 and current is None for _id, open_, current in written["counters"])
        store.rebuild(config)
        assert store.dump_projections() == written
    finally:
        store.close()


def test_a_writer_carries_on_the_next_business_day(history: tuple[Path, int],
                                                   config: SiteConfig, tmp_path: Path) -> None:
    db, events = history
    copy = tmp_path / "edge.db"
    copy.write_bytes(db.read_bytes())
    last = business_days(config, START, DAYS)[-1]
    nxt = business_days(config, date.fromordinal(last.toordinal() + 1), 1)[0]
    assert first_day(config, DAYS, nxt) == START  # the bench's start: DAYS before a day
    clock = ManualClock(datetime.combine(nxt, time(8, 40), ZoneInfo(config.timezone)))
    writer = Writer(EventStore(copy, config.site), config, clock)
    try:
        assert writer.state.seq == events
        assert not writer.state.day_open
        service = next(s.code for s in config.services.values() if s.kiosk)
        counter = next(c for c, k in config.counters.items() if k.services[0] == service)
        issued = writer.execute_sync(Issue(service))
        assert issued.refused is None
        assert issued.ticket is not None
        assert [e.type for e in issued.events] == ["DayOpened", "TicketIssued"]
        assert [e.seq for e in issued.events] == [events + 1, events + 2]
        assert issued.ticket["number"] == config.services[service].first  # a new day's count
        assert writer.execute_sync(OpenCounter(counter), "st0000").refused is None
        clock.advance(60)
        called = writer.execute_sync(CallNext(counter), "st0000")
        assert called.refused is None
        assert called.ticket is not None
        assert called.ticket["id"] == issued.ticket["id"]
        live = writer.store.dump_projections()
        writer.store.rebuild(config)
        assert writer.store.dump_projections() == live
    finally:
        writer.close()
