"""``madoguchi backup edge`` / ``restore edge``: the site's SQLite, nightly, sealed, 7 nights.

The backup runs beside the live edge (its own connection; see ``sqlitefile``) and never goes
through the writer: it reads, so the single-writer rule holds. Its manifest says what it holds
(site, schema version, events, max seq, tickets) so a restore can say what it restored and
refuse another site's file. A restore decrypts into a new file next to the database, checks it,
and only then swaps it in with one rename; the replaced file is kept beside it.

Restoring an older night loses the events after it at the edge; the hub still has those it
acknowledged. The report says which seq the edge is back at; fetching the later events back from
the hub before the edge opens again is not built yet (until then the hub quarantines the edge's
new events at those seqs as conflicts rather than overwrite its own).
"""

from __future__ import annotations

import os
import sqlite3
import time
from contextlib import closing
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

from edge.backup import container, sqlitefile
from edge.backup.errors import BackupError
from edge.backup.files import (
    KEEP,
    copy_generations,
    discard,
    night_name,
    prune,
    swap_sqlite,
    write_atomically,
)

FORMAT = 1
PAYLOAD = "sqlite+zlib"  # the database file, deflated (``sqlitefile.deflate``)
TZ = ZoneInfo("Asia/Tokyo")  # a night is a date at the ward


@dataclass
class BackupResult:
    path: Path
    manifest: dict[str, Any]
    seconds: float
    removed: list[Path] = field(default_factory=list)
    copied: str | None = None  # "rsync" / "copy" when a second location was given

    @property
    def size(self) -> int:
        return self.path.stat().st_size


@dataclass
class RestoreResult:
    manifest: dict[str, Any]
    seconds: float
    replaced: Path | None  # the previous database, kept


def describe(db: Path) -> dict[str, Any]:
    """What a (copied) edge database holds: the manifest's facts."""
    with closing(sqlite3.connect(f"file:{db}?mode=ro", uri=True)) as conn:
        def one(sql: str) -> Any:
            return conn.execute(sql).fetchone()[0]

        try:
            return {
                "site": one("SELECT value FROM meta WHERE key='site'"),
                "schema_version": int(one("SELECT max(version) FROM migrations") or 0),
                "events": int(one("SELECT count(*) FROM events")),
                "max_seq": int(one("SELECT coalesce(max(seq), 0) FROM events")),
                "tickets": int(one("SELECT count(*) FROM tickets")),
            }
        except (sqlite3.Error, TypeError) as exc:
            raise BackupError(f"{db}: not an edge database ({exc})",
                              f"{db}: 拠点（エッジ）のデータベースではありません"
                              f"（{exc}）") from None


def backup_edge(db: Path, folder: Path, keys: dict[str, bytes], key_id: str, *,
                now: datetime | None = None, keep: int = KEEP,
                copy_to: str | None = None) -> BackupResult:
    """Snapshot ``db`` online and write tonight's sealed file into ``folder``."""
    t0 = time.perf_counter()
    now = now or datetime.now(TZ)
    tmp = db.with_name(f".{db.name}.backup-{os.getpid()}")
    try:
        sqlitefile.snapshot(db, tmp)
        facts = describe(tmp)
        manifest = {"format": FORMAT, "kind": "edge", "payload": PAYLOAD, **facts,
                    "created_at": now.isoformat()}
        path = folder / night_name(f"edge-{facts['site']}", now)
        trailer: dict[str, Any] = {}
        write_atomically(path, lambda f: trailer.update(container.write(
            f, manifest, sqlitefile.deflate(sqlitefile.file_chunks(tmp)), keys, key_id)))
    finally:
        discard(tmp)
    removed = prune(folder, f"edge-{facts['site']}", keep)
    copied = copy_generations(folder, f"edge-{facts['site']}", copy_to) if copy_to else None
    return BackupResult(path, {**manifest, **trailer}, time.perf_counter() - t0, removed, copied)


def _refuse_if_live(db: Path) -> None:
    wal = db.with_name(db.name + "-wal")
    if wal.exists() and wal.stat().st_size > 0:
        raise BackupError(
            f"{db} is in use or was not closed cleanly (its -wal file holds data): stop the edge "
            "(systemctl stop madoguchi-edge) and try again; --force keeps that -wal beside the "
            "replaced file",
            f"{db} は使用中か、正常に終了していません（-wal にデータがあります）。"
            "エッジを停止してからやり直してください（--force で -wal を退避して続行）")


def restore_edge(backup: Path, db: Path, site: str, keys: dict[str, bytes], *,
                 force: bool = False) -> RestoreResult:
    """Restore ``backup`` over ``db`` for ``site``; refuses a damaged or foreign file first."""
    t0 = time.perf_counter()
    if not force:
        _refuse_if_live(db)
    db.parent.mkdir(parents=True, exist_ok=True)
    tmp = db.with_name(f".{db.name}.restore-{os.getpid()}")
    discard(tmp)
    try:
        with tmp.open("wb") as out:
            inflate = sqlitefile.Inflate(out)
            opened = container.verify(backup, keys, inflate.write)
            inflate.finish()
            out.flush()
            os.fsync(out.fileno())
        manifest = opened.manifest
        container.expect(manifest, "kind", "edge", "not an edge backup",
                         "拠点（エッジ）のバックアップではありません")
        container.expect(manifest, "payload", PAYLOAD, "unknown payload",
                         "未対応の形式です")
        container.expect(manifest, "site", site, "backup of another site",
                         "別の拠点のバックアップです")
        sqlitefile.check(tmp)
        facts = describe(tmp)
        for key in ("site", "events", "max_seq", "tickets", "schema_version"):
            container.expect(facts, key, manifest.get(key), "restored file differs from its "
                             "manifest", "復元したファイルが目録と一致しません")
        if not force:
            _refuse_if_live(db)
        stamp = datetime.now(TZ).strftime("%Y%m%dT%H%M%S")
        replaced = swap_sqlite(tmp, db, stamp)
    except BaseException:
        discard(tmp)
        raise
    return RestoreResult(manifest, time.perf_counter() - t0, replaced)


def report_restore(result: RestoreResult, db: Path) -> str:
    m = result.manifest
    lines = [
        f"restored {db} from the backup of {m['created_at']} / {m['created_at']} の"
        f"バックアップから {db} を復元しました",
        f"  site / 拠点: {m['site']}",
        f"  events / イベント: {m['events']:,} (max seq / 最終番号 {m['max_seq']:,})",
        f"  tickets / 整理券: {m['tickets']:,}",
        f"  schema / スキーマ: v{m['schema_version']}; took / 所要 {result.seconds:.2f} s",
        f"  events after seq {m['max_seq']} are not in this backup; the hub keeps those it "
        f"acknowledged / 最終番号 {m['max_seq']} 以降のイベントはこのバックアップにありません"
        "（ハブが受信済みの分はハブに残っています）",
    ]
    if result.replaced is not None:
        lines.append(f"  previous database kept as / 置き換え前のデータベース: {result.replaced}")
    return "\n".join(lines)
