"""Snapshots at day close and the archive of old events (issue 18 item 1).

Start-up loads the newest snapshot and folds only what follows; these tests hold it to "the
same state as a fold of the whole log", on random days, with damaged snapshots and with events
archived out of the live database.
"""

from __future__ import annotations

import asyncio
import shutil
import sqlite3
from dataclasses import fields
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from snapshot_support import CONFIG, RETENTION_DAYS, run_days

import edge.store.store as store_module
from edge.domain import snapshot
from edge.domain.state import State, apply
from edge.store.archive import ArchiveError
from edge.store.store import EventStore


def full_fold(store: EventStore) -> State:
    state = State(CONFIG)
    for ev in store.events():
        apply(state, ev)
    return state


def test_every_state_field_is_in_a_snapshot() -> None:
    assert {f.name for f in fields(State)} == snapshot.STATE_FIELDS | {"config"}


@settings(max_examples=8, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(days=st.integers(1, 4), tickets=st.integers(0, 25), seed=st.integers(0, 10_000))
def test_snapshot_round_trip_and_start_equal_a_full_fold(
        tmp_path_factory: pytest.TempPathFactory, days: int, tickets: int, seed: int) -> None:
    db = tmp_path_factory.mktemp("snap") / "edge.db"
    writer = asyncio.run(run_days(db, days, tickets=tickets, seed=seed, archive=False))
    live = snapshot.to_dict(writer.state)
    assert snapshot.to_dict(snapshot.decode(CONFIG, snapshot.encode(writer.state))) == live
    store = writer.store
    assert len(store.snapshots()) == min(days, store_module.SNAPSHOTS_KEPT)
    assert all(ok for _, ok in store.verify_snapshots(CONFIG))
    assert snapshot.to_dict(store.load_state(CONFIG)) == live
    assert snapshot.to_dict(full_fold(store)) == live
    writer.close()


def test_start_folds_only_the_events_after_the_newest_snapshot(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    writer = asyncio.run(run_days(tmp_path / "edge.db", 5, archive=False))
    store = writer.store
    newest = store.snapshots()[0].seq
    folded: list[int] = []
    real_apply = store_module.apply  # type: ignore[attr-defined]

    def counting(state: State, ev: object) -> None:
        folded.append(ev.seq)  # type: ignore[attr-defined]
        real_apply(state, ev)  # type: ignore[arg-type]

    monkeypatch.setattr(store_module, "apply", counting)
    state = store.load_state(CONFIG)
    assert folded == list(range(newest + 1, store.last_seq() + 1))
    assert snapshot.to_dict(state) == snapshot.to_dict(writer.state)
    writer.close()


def test_a_damaged_snapshot_falls_back_to_an_older_one_then_to_the_log(tmp_path: Path) -> None:
    writer = asyncio.run(run_days(tmp_path / "edge.db", 4, archive=False))
    store, live = writer.store, snapshot.to_dict(writer.state)
    seqs = [s.seq for s in store.snapshots()]
    store.conn.execute("UPDATE snapshots SET state = x'00ff' WHERE seq = ?", (seqs[0],))
    assert snapshot.to_dict(store.load_state(CONFIG)) == live
    assert (seqs[0], False) in store.verify_snapshots(CONFIG)
    store.conn.execute("UPDATE snapshots SET state = x'00ff'")
    assert snapshot.to_dict(store.load_state(CONFIG)) == live
    writer.close()


def test_a_long_fold_stores_a_snapshot_for_the_next_start(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A database from before snapshots (or written in bulk): the first start folds it all and
    stores a snapshot, so the second start does not."""
    writer = asyncio.run(run_days(tmp_path / "edge.db", 3, archive=False))
    store, live = writer.store, snapshot.to_dict(writer.state)
    store.conn.execute("DELETE FROM snapshots")
    monkeypatch.setattr(store_module, "SNAPSHOT_AFTER_EVENTS", 50)
    assert snapshot.to_dict(store.load_state(CONFIG)) == live
    assert [s.seq for s in store.snapshots()] == [store.last_seq()]
    writer.close()


def test_old_acknowledged_events_move_to_the_archive_and_still_rebuild(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    writer = asyncio.run(run_days(db, 9))
    store = writer.store
    live_rows = store.conn.execute("SELECT min(seq), count(*) FROM events").fetchone()
    last = store.last_seq()
    archived = int(store.meta("archived_upto") or 0)
    assert archived > 0
    assert live_rows[0] == archived + 1
    assert live_rows[1] == last - archived
    oldest_live_day = store.conn.execute("SELECT min(day) FROM events").fetchone()[0]
    assert store.archive is not None
    assert len(store.archive.files()) >= 2
    # every event is still there, once, in order
    assert [e.seq for e in store.events()] == list(range(1, last + 1))
    assert len({e.id for e in store.events()}) == last
    before = store.dump_projections()
    state = store.rebuild(CONFIG)
    assert store.dump_projections() == before
    assert snapshot.to_dict(state) == snapshot.to_dict(writer.state)
    assert all(ok for _, ok in store.verify_snapshots(CONFIG))
    # nothing younger than the retention period left the live database
    today = writer.clock.now().date()
    assert oldest_live_day >= str(today.fromordinal(today.toordinal() - RETENTION_DAYS - 1))
    writer.close()


def test_unacknowledged_events_are_never_archived(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    writer = asyncio.run(run_days(db, 6, archive=False))
    store = writer.store
    store.conn.execute("INSERT INTO outbox(seq) VALUES (5)")  # the hub lacks seq 5 (and on)
    moved = asyncio.run(writer.archive_old(RETENTION_DAYS, chunk=50))
    assert moved == 4
    assert int(store.meta("archived_upto") or 0) == 4
    writer.close()


def test_a_lost_archive_is_reported_and_start_up_still_works(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    writer = asyncio.run(run_days(db, 8))
    live = snapshot.to_dict(writer.state)
    writer.close()
    shutil.rmtree(Path(str(db) + ".archive"))
    store = EventStore(db, CONFIG.site)
    assert snapshot.to_dict(store.load_state(CONFIG)) == live
    with pytest.raises(ArchiveError, match="restore the folder"):
        store.rebuild(CONFIG)
    store.close()


def test_an_archive_file_written_just_before_a_crash_is_not_read_twice(tmp_path: Path) -> None:
    """The file is durable but the rows were not yet deleted (killed in between): readers
    take each event once, and the next archiving step finishes the move."""
    db = tmp_path / "edge.db"
    writer = asyncio.run(run_days(db, 6, archive=False))
    store = writer.store
    store.ack(store.last_seq())
    upto = store.archivable_upto(writer.clock.now().date().isoformat(), RETENTION_DAYS)
    rows = store.archive_rows(upto, 40)
    assert store.archive is not None
    store.archive.write(rows)  # ... and the process dies before drop_archived
    last = store.last_seq()
    assert [e.seq for e in store.events()] == list(range(1, last + 1))
    asyncio.run(writer.archive_old(RETENTION_DAYS, chunk=40))
    assert [e.seq for e in store.events()] == list(range(1, last + 1))
    assert int(store.meta("archived_upto") or 0) >= rows[-1][0]
    writer.close()


def test_a_damaged_archive_file_is_refused(tmp_path: Path) -> None:
    db = tmp_path / "edge.db"
    writer = asyncio.run(run_days(db, 8))
    writer.close()
    first = sorted(Path(str(db) + ".archive").iterdir())[0]
    data = bytearray(first.read_bytes())
    data[len(data) // 2] ^= 0xFF
    first.write_bytes(bytes(data))
    store = EventStore(db, CONFIG.site)
    with pytest.raises(ArchiveError, match="damaged"):
        list(store.events())
    store.close()


def test_seqs_go_on_after_everything_live_was_archived(tmp_path: Path) -> None:
    """last_seq counts archived events: the live table may be empty for a moment."""
    db = tmp_path / "edge.db"
    writer = asyncio.run(run_days(db, 3, archive=False))
    store = writer.store
    last = store.last_seq()
    store.drop_archived(last)  # as if all were archived
    assert store.last_seq() == last
    writer.close()
    assert sqlite3.connect(db).execute("SELECT count(*) FROM events").fetchone() == (0,)
