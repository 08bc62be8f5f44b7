"""SQLite files for backup: an online snapshot with the backup API, and checks of a restored copy.

Why the backup API in one step (``pages=-1``) from a connection of our own: in WAL mode that is
one read transaction, so the copy is exactly the database as of one commit, while the edge's
writer keeps committing (WAL readers do not block the writer, nor it them). A file copy (cp,
rsync of the live file) could tear a transaction or miss the WAL.
"""

from __future__ import annotations

import sqlite3
import zlib
from collections.abc import Iterable, Iterator
from contextlib import closing
from pathlib import Path
from typing import BinaryIO

from edge.backup.errors import BackupError
from edge.backup.files import discard


def snapshot(src: Path, dst: Path) -> None:
    """Copy the live database ``src`` to a new file ``dst`` (self-contained, no WAL)."""
    if not src.is_file():
        raise BackupError(f"{src}: no such database", f"{src}: データベースがありません")
    discard(dst)
    try:
        with closing(sqlite3.connect(src, timeout=30)) as live, \
                closing(sqlite3.connect(dst)) as copy:
            live.backup(copy, pages=-1)
            copy.execute("PRAGMA journal_mode=DELETE")  # one file: no -wal to carry along
            copy.commit()
    except sqlite3.Error as exc:
        discard(dst)
        raise BackupError(f"{src}: online backup failed: {exc}",
                          f"{src}: オンラインバックアップに失敗しました: {exc}") from None


def file_chunks(path: Path, size: int = 1 << 20) -> Iterator[bytes]:
    with path.open("rb") as f:
        while chunk := f.read(size):
            yield chunk


def deflate(chunks: Iterable[bytes]) -> Iterator[bytes]:
    """zlib level 1: SQLite pages shrink 2-4 times for little CPU, so 7 nights of a five-year
    edge database fit a mini-PC's disk (and the copy crosses a ward's line sooner)."""
    z = zlib.compressobj(1)
    for chunk in chunks:
        if out := z.compress(chunk):
            yield out
    yield z.flush()


class Inflate:
    """A sink for ``container.verify``: inflates what ``deflate`` made into ``out``."""

    def __init__(self, out: BinaryIO) -> None:
        self.out = out
        self._z = zlib.decompressobj()

    def write(self, data: bytes) -> None:
        try:
            self.out.write(self._z.decompress(data))
        except zlib.error as exc:
            raise BackupError(f"backup payload is not what it should be ({exc})",
                              f"バックアップの中身が不正です（{exc}）") from None

    def finish(self) -> None:
        self.out.write(self._z.flush())
        if not self._z.eof:
            raise BackupError("backup payload is incomplete", "バックアップの中身が不完全です")


def check(path: Path) -> None:
    """Refuse a restored file that SQLite itself finds damaged."""
    try:
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
            result = [r[0] for r in conn.execute("PRAGMA quick_check")]
    except sqlite3.Error as exc:
        result = [str(exc)]
    if result != ["ok"]:
        raise BackupError(f"restored database fails SQLite's check: {result[:3]}",
                          f"復元したデータベースが SQLite の検査に通りません: {result[:3]}")


def table_counts(path: Path) -> dict[str, int]:
    """Rows per table (SQLite's own tables left out)."""
    with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as conn:
        names = [r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%' "
            "ORDER BY name")]
        return {n: int(conn.execute(f'SELECT count(*) FROM "{n}"').fetchone()[0])  # noqa: S608
                for n in names}
