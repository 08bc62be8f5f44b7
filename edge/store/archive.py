"""Events archived out of the live database: gzip files of JSON lines beside it.

Why: a busy site writes about 2 million events a year; five years of them in the live SQLite
file make every backup, VACUUM and copy of it grow without bound, though start-up no longer
reads them (snapshots, edge/domain/snapshot.py). Events older than the retention period are
moved here once the hub has acknowledged them (the hub keeps every event; this is the edge's
own copy, read only by ``rebuild`` and a replay from old seqs).

A file is named by the seq range it holds (``events-<first>-<last>.jsonl.gz``, 12 digits each)
and is written atomically: temporary file, fsync, rename, fsync of the folder. Only after that
are the rows deleted from the live database (edge/store/store.py ``archive_step``), so a crash
between the two leaves the events in both places, and readers take the archive's copy and skip
the live rows it covers; the next step deletes them. gzip's CRC-32 catches a damaged file.
"""

from __future__ import annotations

import gzip
import json
import os
import re
import zlib
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

EventRow = tuple[int, str, str, str, str, str]  # seq, id, at, day, type, data (JSON text)
_NAME = re.compile(r"^events-(\d{12})-(\d{12})\.jsonl\.gz$")


class ArchiveError(Exception):
    """An archive file that cannot be read back, or a hole in the archived seqs."""


class EventArchive:
    """The archive folder of one edge database (``<db>.archive/``)."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder

    def files(self) -> list[tuple[int, int, Path]]:
        """``(first, last, path)`` of every complete archive file, in seq order."""
        if not self.folder.is_dir():
            return []
        found = []
        for p in self.folder.iterdir():
            m = _NAME.match(p.name)
            if m:
                found.append((int(m.group(1)), int(m.group(2)), p))
        return sorted(found)

    def last_seq(self) -> int:
        """The highest archived seq (0: nothing archived)."""
        files = self.files()
        return files[-1][1] if files else 0

    def check(self, archived_upto: int) -> None:
        """Refuse a folder with holes or one missing events the database says it archived."""
        expected = 1
        for first, last, p in self.files():
            if first != expected:
                raise ArchiveError(f"archive {self.folder} lacks events {expected}..{first - 1} "
                                   f"(before {p.name})")
            expected = last + 1
        if expected - 1 < archived_upto:
            raise ArchiveError(
                f"events 1..{archived_upto} were archived to {self.folder}, but it holds only "
                f"1..{expected - 1}: restore the folder from the backup copy")

    def write(self, rows: Sequence[EventRow]) -> Path:
        """Write ``rows`` (consecutive seqs) as one file, durably, and return its path."""
        first, last = rows[0][0], rows[-1][0]
        if last - first + 1 != len(rows):
            raise ArchiveError(f"rows {first}..{last} are not consecutive")
        self.folder.mkdir(parents=True, exist_ok=True)
        final = self.folder / f"events-{first:012d}-{last:012d}.jsonl.gz"
        tmp = final.with_name(final.name + ".tmp")
        with open(tmp, "wb") as raw:
            with gzip.GzipFile(fileobj=raw, mode="wb", compresslevel=6, mtime=0) as gz:
                for row in rows:
                    gz.write(json.dumps(row, ensure_ascii=False, separators=(",", ":"))
                             .encode() + b"\n")
            raw.flush()
            os.fsync(raw.fileno())
        os.replace(tmp, final)
        fd = os.open(self.folder, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)
        return final

    def rows(self, after: int = 0) -> Iterator[EventRow]:
        """Archived rows with seq > ``after``, in order."""
        for first, last, path in self.files():
            if last <= after:
                continue
            yield from self._read(path, first, last, after)

    @staticmethod
    def _read(path: Path, first: int, last: int, after: int) -> Iterator[EventRow]:
        expected = first
        try:
            with gzip.open(path, "rb") as gz:
                for line in gz:
                    row: list[Any] = json.loads(line)
                    seq = int(row[0])
                    if seq != expected:
                        raise ArchiveError(f"{path.name}: seq {seq} where {expected} was due")
                    expected += 1
                    if seq > after:
                        yield (seq, row[1], row[2], row[3], row[4], row[5])
        except (OSError, EOFError, ValueError, IndexError, zlib.error) as exc:
            raise ArchiveError(f"{path.name} is damaged: {exc}") from exc
        if expected != last + 1:
            raise ArchiveError(f"{path.name} ends at {expected - 1}, its name says {last}")
