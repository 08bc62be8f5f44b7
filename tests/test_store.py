"""EventStore and Writer on a real SQLite file: pragmas, migrations, seq, atomicity, rebuild."""

from __future__ import annotations

import itertools
import json
import sqlite3
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from support import TZ, morning, small_site

from edge.domain.clock import ManualClock
from edge.domain.commands import (
    CallNext,
    CallNumber,
    Cancel,
    CloseDay,
    Command,
    Finish,
    Hold,
    Issue,
    MarkAbsent,
    OpenCounter,
    Recall,
    Transfer,
)
from edge.domain.model import SiteConfig
from edge.domain.views import snapshot, stats_view
from edge.store.schema import MIGRATIONS, migrate
from edge.store.store import EventStore, StoreError
from edge.store.writer import Writer

SITE = "test-site"
CONFIG = small_site(range_size=5)


class Ids:
    """Deterministic ids and tokens that survive a writer restart (shared counter)."""

    def __init__(self) -> None:
        self._n = itertools.count(1)

    def new_id(self) -> str:
        return f"id-{next(self._n):05d}"

    def new_token(self) -> str:
        return f"tok-{next(self._n):05d}"


def make_writer(path: Path, clock: ManualClock, ids: Ids, config: SiteConfig = CONFIG,
                durable: bool = True) -> Writer:
    return Writer(EventStore(path, SITE, durable=durable), config, clock,
                  new_id=ids.new_id, new_token=ids.new_token)


def at(hh: int, mm: int, day: int = 21) -> datetime:
    return datetime(2026, 11, day, hh, mm, tzinfo=TZ)


@pytest.fixture
def db_path(tmp_path: Path) -> Path:
    return tmp_path / "edge.db"


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock(morning())


@pytest.fixture
def writer(db_path: Path, clock: ManualClock) -> Iterator[Writer]:
    w = make_writer(db_path, clock, Ids())
    yield w
    w.close()


def run(w: Writer, *cmds: Command) -> None:
    for cmd in cmds:
        out = w.execute_sync(cmd)
        assert out.refused is None, (cmd, out.refused and out.refused.code)


def busy_day(w: Writer, clock: ManualClock) -> None:
    """Every kind of event, wrap-around included, then a rollover with live tickets."""
    run(w, OpenCounter("1"), OpenCounter("2"), OpenCounter("3"))
    for i in range(4):
        clock.advance(60)
        run(w, Issue("A", priority=i == 2), Issue("B", channel="web"))
    run(w, CallNext("1"), Recall("1"), Transfer("1", to_service="C"), CallNext("3"))
    clock.advance(120)
    run(w, Finish("3"), CallNext("2"), Hold("2"), CallNext("2"), MarkAbsent("2"))
    run(w, CallNumber("1", 4), Transfer("1", to_counter="3"), Cancel(number=203))
    run(w, Issue("A"), Issue("A"), CallNext("1"), Finish("1"))  # A wraps to lap 2
    clock.advance(600)


def count(conn: sqlite3.Connection, table: str) -> int:
    return int(conn.execute(f"SELECT count(*) FROM {table}").fetchone()[0])


def snap(w: Writer) -> dict[str, Any]:
    return snapshot(w.state, w.clock.now())


# --- connection settings and schema -----------------------------------------------------------


def test_wal_and_synchronous_full_are_set(db_path: Path) -> None:
    store = EventStore(db_path, SITE)
    try:
        assert store.conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 2  # FULL
        assert store.conn.execute("PRAGMA foreign_keys").fetchone()[0] == 1
    finally:
        store.close()
    # a second, independent connection sees WAL as the file's journal mode
    conn = sqlite3.connect(db_path)
    assert conn.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    conn.close()


def test_durable_false_turns_synchronous_off(db_path: Path) -> None:
    store = EventStore(db_path, SITE, durable=False)
    try:
        assert store.conn.execute("PRAGMA synchronous").fetchone()[0] == 0
    finally:
        store.close()


def test_migrations_are_recorded_and_idempotent(db_path: Path) -> None:
    store = EventStore(db_path, SITE)
    expected = [(num, name) for num, name, _ in MIGRATIONS]
    assert store.schema_version == expected[-1][0]
    rows = store.conn.execute("SELECT version, name FROM migrations ORDER BY version").fetchall()
    assert rows == expected
    assert {"events", "outbox", "tickets", "counters", "service_days", "meta"} <= set(
        store.db.table_names())
    store.set_meta("probe", "kept")
    assert migrate(store.db) == expected[-1][0]  # again on the same connection: no-op
    store.close()
    store = EventStore(db_path, SITE)
    try:
        assert store.schema_version == expected[-1][0]
        rows = store.conn.execute("SELECT version, name FROM migrations").fetchall()
        assert rows == expected
        assert store.meta("probe") == "kept"
        assert store.meta("site") == SITE
    finally:
        store.close()


def test_store_refuses_a_database_of_another_site(db_path: Path) -> None:
    EventStore(db_path, SITE).close()
    with pytest.raises(StoreError, match="belongs to site 'test-site', not 'other-site'"):
        EventStore(db_path, "other-site")
    store = EventStore(db_path, SITE)  # still fine for its own site
    assert store.meta("site") == SITE
    store.close()


# --- seq, outbox ------------------------------------------------------------------------------


def test_seq_is_gap_free_across_reopen(db_path: Path, clock: ManualClock) -> None:
    ids = Ids()
    w = make_writer(db_path, clock, ids)
    busy_day(w, clock)
    first = w.store.last_seq()
    w.close()
    w = make_writer(db_path, clock, ids)
    try:
        assert w.state.seq == first
        refused = w.execute_sync(Finish("9"))  # refused: writes nothing
        assert refused.refused is not None
        assert refused.events == []
        clock.set(at(9, 0, day=22))
        run(w, Issue("B"), OpenCounter("2"), CallNext("2"))
        seqs = [e.seq for e in w.store.events()]
        assert seqs == list(range(1, first + 6))  # DayClosed + DayOpened + 3 commands
        assert len({e.id for e in w.store.events()}) == len(seqs)
        assert {e.site for e in w.store.events()} == {SITE}
        assert w.store.last_seq() == w.state.seq == seqs[-1]
    finally:
        w.close()


def test_outbox_holds_every_event_until_acked(writer: Writer, clock: ManualClock) -> None:
    busy_day(writer, clock)
    store = writer.store
    events = list(store.events())
    assert count(store.conn, "outbox") == len(events)
    assert [e.to_dict() for e in store.outbox(limit=10_000)] == [e.to_dict() for e in events]
    assert [e.seq for e in store.outbox(limit=3)] == [1, 2, 3]
    assert store.ack(10) == 10
    assert [e.seq for e in store.outbox()][:2] == [11, 12]
    assert store.ack(10) == 0  # idempotent
    assert store.ack(5) == 0  # an older ack changes nothing
    assert count(store.conn, "events") == len(events)  # the log itself stays
    run(writer, Issue("B"))
    assert store.outbox()[-1].seq == store.last_seq()
    assert store.ack(store.last_seq()) == len(events) - 10 + 1
    assert store.outbox() == []


# --- atomicity --------------------------------------------------------------------------------


def test_failed_commit_writes_nothing_and_reloads_state(
        writer: Writer, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    run(writer, OpenCounter("1"), Issue("A"), Issue("A"), CallNext("1"))
    store = writer.store
    before = {t: count(store.conn, t) for t in ("events", "outbox", "tickets")}
    dump = store.dump_projections()
    seq = store.last_seq()
    good = snap(writer)

    def boom(*_: Any, **__: Any) -> None:
        raise sqlite3.OperationalError("disk I/O error")

    monkeypatch.setattr(store, "_project", boom)
    with pytest.raises(StoreError, match="disk I/O error"):
        writer.execute_sync(Issue("A"))  # events and outbox rows were inserted, then boom
    with pytest.raises(StoreError):
        writer.execute_sync(CallNext("1"))  # would auto-finish and call: two events
    assert {t: count(store.conn, t) for t in ("events", "outbox", "tickets")} == before
    assert store.dump_projections() == dump
    assert store.last_seq() == seq
    assert not store.conn.in_transaction
    # the writer's state was reloaded from the log: the failed commands left no trace
    assert writer.state.seq == seq
    assert snap(writer) == good
    assert snap(writer) == snapshot(store.load_state(CONFIG), clock.now())
    assert sorted(writer.state.live_numbers) == [1, 2]

    monkeypatch.undo()
    out = writer.execute_sync(Issue("A"))
    assert [(e.seq, e.data["number"]) for e in out.events] == [(seq + 1, 3)]


def test_failed_rollover_commit_keeps_yesterday(
        writer: Writer, clock: ManualClock, monkeypatch: pytest.MonkeyPatch) -> None:
    run(writer, Issue("A"), Issue("B"))
    seq = writer.store.last_seq()
    clock.set(at(8, 30, day=22))

    def boom(*_: Any, **__: Any) -> None:
        raise sqlite3.OperationalError("database or disk is full")

    monkeypatch.setattr(writer.store, "_project", boom)
    with pytest.raises(StoreError):
        writer.execute_sync(Issue("A"))
    assert writer.store.last_seq() == seq
    assert (writer.state.day, writer.state.day_open, len(writer.state.live_numbers)) == (
        "2026-11-21", True, 2)
    monkeypatch.undo()
    out = writer.execute_sync(Issue("A"))
    assert [e.type for e in out.events] == ["DayClosed", "DayOpened", "TicketIssued"]
    assert [e.seq for e in out.events] == [seq + 1, seq + 2, seq + 3]


def test_each_commit_writes_events_outbox_and_projection_together(
        writer: Writer, clock: ManualClock) -> None:
    store = writer.store
    tokens: list[str] = []
    for cmd in (OpenCounter("1"), Issue("A"), Issue("B"), CallNext("1"), Recall("1"),
                Transfer("1", to_service="C"), Cancel(number=201)):
        out = writer.execute_sync(cmd)
        assert out.refused is None
        if out.ticket and "token" in out.ticket:
            tokens.append(out.ticket["token"])
        assert count(store.conn, "outbox") == count(store.conn, "events") == store.last_seq()
        sql = "SELECT id, state, service, stage FROM tickets"
        rows = {r[0]: r for r in store.conn.execute(sql)}
        for t in writer.state.tickets.values():
            assert rows[t.id] == (t.id, t.state, t.service, t.stage)
        clock.advance(30)
    found = [store.ticket_row(tok) for tok in tokens]
    assert [(r["number"], r["state"], r["service"], r["stage"]) for r in found if r] == [
        (1, "waiting", "C", 2), (201, "cancelled", "B", 1)]
    assert store.ticket_row("no-such-token") is None


# --- rebuild and reload -----------------------------------------------------------------------


def test_rebuild_equals_live_projections(writer: Writer, clock: ManualClock) -> None:
    store = writer.store
    busy_day(writer, clock)
    assert store.dump_projections() == dump_after_rebuild(store)
    # staff close, then a new day
    run(writer, CloseDay())
    clock.set(at(8, 45, day=22))
    run(writer, Issue("A"), OpenCounter("1"), CallNext("1"))
    assert store.dump_projections() == dump_after_rebuild(store)
    # a rollover with live tickets (DayClosed + DayOpened + the command, in one commit)
    yesterday = {t.token: t.state for t in writer.state.tickets.values()}
    assert sorted(yesterday.values()) == ["called"]
    clock.set(at(8, 30, day=23))
    run(writer, Issue("B"))
    for token in yesterday:
        row = store.ticket_row(token)
        assert row is not None
        assert (row["state"], row["finished_at"]) == ("expired", "2026-11-23T08:30:00+09:00")
    live = store.dump_projections()
    states = {row[0]: row[7] for row in live["tickets"]}
    assert all(s in ("finished", "expired", "cancelled")
               for tid, s in states.items() if tid not in writer.state.tickets)
    assert live == dump_after_rebuild(store)
    assert live == dump_after_rebuild(store, batch=3)


def dump_after_rebuild(store: EventStore, batch: int = 20_000) -> dict[str, Any]:
    live_state_seq = store.last_seq()
    rebuilt = store.rebuild(CONFIG, batch=batch)
    assert rebuilt.seq == live_state_seq
    return store.dump_projections()


def test_rebuild_state_equals_live_state(writer: Writer, clock: ManualClock) -> None:
    busy_day(writer, clock)
    rebuilt = writer.store.rebuild(CONFIG)
    assert snapshot(rebuilt, clock.now()) == snap(writer)


def test_load_state_after_reopen_equals_live_state(db_path: Path, clock: ManualClock) -> None:
    ids = Ids()
    w = make_writer(db_path, clock, ids)
    busy_day(w, clock)
    run(w, CloseDay())
    clock.set(at(9, 0, day=22))
    run(w, OpenCounter("1"), OpenCounter("2"), Issue("A"), Issue("B"), CallNext("1"))
    clock.advance(200)
    run(w, CallNext("2"), Hold("2"))
    live_snap, live_stats = snap(w), stats_view(w.state)
    live_history = dict(w.state.history_handling)
    w.close()
    w2 = make_writer(db_path, clock, ids)
    try:
        assert snap(w2) == live_snap
        assert stats_view(w2.state) == live_stats
        assert w2.state.history_handling == live_history
        assert json.dumps(live_snap)  # snapshot is JSON
        # and the restarted writer carries on with the same numbering
        out = w2.execute_sync(Issue("A"))
        assert out.ticket is not None
        assert out.ticket["number"] == 2
    finally:
        w2.close()
