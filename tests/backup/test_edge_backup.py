"""Edge backups: online while tickets are issued, 7 nights kept, damaged or foreign refused."""

from __future__ import annotations

import asyncio
import shutil
from datetime import datetime
from pathlib import Path

import pytest
from backup_support import file_sha256, flip_byte, new_keys
from support import TZ, morning, small_site

from edge.backup import files
from edge.backup.container import read_header
from edge.backup.edge_db import backup_edge, describe, restore_edge
from edge.backup.errors import BackupError
from edge.domain.clock import ManualClock
from edge.domain.commands import CallNext, Finish, Issue, OpenCounter
from edge.store.store import EventStore
from edge.store.writer import Writer

CONFIG = small_site(range_size=50)
SITE = CONFIG.site


def fill(db: Path, cycles: int, site: str = SITE) -> None:
    """``cycles`` tickets issued, called and finished (fast: not durable)."""
    w = Writer(EventStore(db, site, durable=False), CONFIG, ManualClock(morning(24)))
    try:
        w.execute_sync(OpenCounter("1"))
        for _ in range(cycles):
            for cmd in (Issue("A"), CallNext("1"), Finish("1")):
                assert w.execute_sync(cmd).refused is None
    finally:
        w.close()


def night(day: int) -> datetime:
    return datetime(2026, 11, day, 2, 0, tzinfo=TZ)


async def test_backup_while_issuing_keeps_every_acknowledged_ticket(tmp_path: Path) -> None:
    db = tmp_path / "live" / "edge.db"
    fill(db, 5000)
    keys, kid = new_keys()
    writer = Writer(EventStore(db, SITE), CONFIG, ManualClock(morning(24)))
    acked: list[str] = []
    stop, progressed = asyncio.Event(), asyncio.Event()

    async def until(n: int) -> None:
        while len(acked) < n:
            await progressed.wait()
            progressed.clear()

    async def issue() -> None:
        while not stop.is_set():
            out = await writer.execute(Issue("A"))
            assert out.refused is None
            assert out.ticket is not None
            acked.append(out.ticket["id"])
            progressed.set()
            await writer.execute(CallNext("1"))
            await writer.execute(Finish("1"))

    task = asyncio.create_task(issue())
    try:
        await until(30)
        before = set(acked)  # acknowledged before the backup starts
        seq_before = writer.read(lambda s: s.seq)
        result = await asyncio.to_thread(backup_edge, db, tmp_path / "backups", keys, kid,
                                         now=night(25))
        seq_after = writer.read(lambda s: s.seq)
        n_after = len(acked)
        await until(n_after + 20)
    finally:
        stop.set()
        await task
    final_seq = writer.read(lambda s: s.seq)
    writer.close()
    during = seq_after - seq_before
    assert during > 0, "the writer committed nothing while the backup ran"

    restored = tmp_path / "restored" / "edge.db"
    report = restore_edge(result.path, restored, SITE, keys)
    facts = describe(restored)
    assert report.manifest["max_seq"] == facts["max_seq"]
    assert seq_before <= facts["max_seq"] < final_seq
    assert facts["events"] == facts["max_seq"]  # gap-free: no torn transaction
    store = EventStore(restored, SITE)
    try:
        ids = {r[0] for r in store.conn.execute("SELECT id FROM tickets")}
        assert before <= ids, f"{len(before - ids)} acknowledged tickets missing"
        live = store.dump_projections()
        store.rebuild(CONFIG)
        assert store.dump_projections() == live
    finally:
        store.close()


@pytest.mark.parametrize("how", ["rsync", "copy"])
def test_eighth_night_deletes_the_oldest_here_and_in_the_copy(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, how: str) -> None:
    if how == "copy":
        monkeypatch.setattr("edge.backup.files.shutil.which", lambda _name: None)
    else:
        assert shutil.which("rsync"), "rsync is not installed (apt-get install rsync)"
    db, folder, second = tmp_path / "edge.db", tmp_path / "b", tmp_path / "far" / "b"
    fill(db, 20)
    (folder).mkdir()
    (folder / "notes.txt").write_text("not a backup")
    keys, kid = new_keys()
    for day in range(1, 8):
        result = backup_edge(db, folder, keys, kid, now=night(day), copy_to=str(second))
        assert result.removed == []
        assert result.copied == how
    names = [f"edge-{SITE}-2026-11-{d:02d}.mbk" for d in range(1, 9)]
    assert [p.name for p in files.generations(folder, f"edge-{SITE}")] == names[:7]
    result = backup_edge(db, folder, keys, kid, now=night(8), copy_to=str(second))
    assert [p.name for p in result.removed] == names[:1]
    for where in (folder, second):
        assert [p.name for p in files.generations(where, f"edge-{SITE}")] == names[1:]
    assert (folder / "notes.txt").exists()
    assert file_sha256(second / names[7]) == file_sha256(folder / names[7])
    # a second run the same night replaces that night's file, it is no new generation
    backup_edge(db, folder, keys, kid, now=night(8).replace(hour=3))
    assert len(files.generations(folder, f"edge-{SITE}")) == 7


@pytest.fixture
def live_and_backup(tmp_path: Path) -> tuple[Path, Path, dict[str, bytes], str]:
    """A live database (another day's data) and a backup of an older state of it."""
    db = tmp_path / "edge.db"
    fill(db, 10)
    keys, kid = new_keys()
    backup = backup_edge(db, tmp_path / "b", keys, kid, now=night(1)).path
    fill(db, 5)
    return db, backup, keys, kid


def assert_untouched(db: Path, before: str) -> None:
    assert file_sha256(db) == before
    assert not list(db.parent.glob(f".{db.name}.restore-*")), "a temporary file was left"


@pytest.mark.parametrize("where", ["manifest", "body", "tag", "cut"])
def test_a_damaged_backup_is_refused_and_nothing_is_overwritten(
        live_and_backup: tuple[Path, Path, dict[str, bytes], str], where: str) -> None:
    db, backup, keys, _ = live_and_backup
    data = backup.read_bytes()
    if where == "manifest":  # the header claims more events than it holds
        with backup.open("rb") as f:
            n = read_header(f)[0]["events"]
        backup.write_bytes(data.replace(f'"events": {n},'.encode(), f'"events": {n + 1},'.encode(),
                                        1))
        assert backup.read_bytes() != data
    elif where == "cut":
        backup.write_bytes(data[: len(data) - 40])
    else:
        flip_byte(backup, len(data) // 2 if where == "body" else -1)
    before = file_sha256(db)
    with pytest.raises(BackupError) as err:
        restore_edge(backup, db, SITE, keys)
    assert "nothing was changed" in str(err.value)
    assert "何も変更していません" in err.value.ja
    assert_untouched(db, before)


def test_a_foreign_backup_is_refused(
        live_and_backup: tuple[Path, Path, dict[str, bytes], str], tmp_path: Path) -> None:
    db, backup, keys, kid = live_and_backup
    before = file_sha256(db)
    other_db = tmp_path / "other" / "edge.db"
    fill(other_db, 3, site="other-site")
    other = backup_edge(other_db, tmp_path / "ob", keys, kid, now=night(1)).path
    with pytest.raises(BackupError, match="another site") as err:
        restore_edge(other, db, SITE, keys)
    assert "別の拠点" in err.value.ja
    with pytest.raises(BackupError, match="does not open with the configured key"):
        restore_edge(backup, db, SITE, new_keys(kid)[0])  # same key id, other key
    with pytest.raises(BackupError, match="key 'k1', which is not configured"):
        restore_edge(backup, db, SITE, new_keys("k2")[0])
    junk = tmp_path / "junk.mbk"
    junk.write_bytes(b"SQLite format 3\x00" + bytes(100))
    with pytest.raises(BackupError, match="not a madoguchi backup"):
        restore_edge(junk, db, SITE, keys)
    assert_untouched(db, before)


def test_restore_swaps_in_the_backup_and_keeps_the_replaced_file(
        live_and_backup: tuple[Path, Path, dict[str, bytes], str]) -> None:
    db, backup, keys, _ = live_and_backup
    newer = describe(db)
    before = file_sha256(db)
    result = restore_edge(backup, db, SITE, keys)
    assert describe(db)["max_seq"] == result.manifest["max_seq"] < newer["max_seq"]
    assert result.replaced is not None
    assert file_sha256(result.replaced) == before


def test_restore_refuses_a_database_in_use(
        live_and_backup: tuple[Path, Path, dict[str, bytes], str]) -> None:
    db, backup, keys, _ = live_and_backup
    writer = Writer(EventStore(db, SITE), CONFIG, ManualClock(morning(24)))
    try:
        assert writer.execute_sync(Issue("A")).refused is None
        before = file_sha256(db)
        with pytest.raises(BackupError, match="in use"):
            restore_edge(backup, db, SITE, keys)
        assert_untouched(db, before)
    finally:
        writer.close()
