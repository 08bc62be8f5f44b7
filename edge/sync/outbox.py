"""The relay's side of the edge database: batches to publish, acks, counts and ``meta``.

The relay opens its own connection to the database file (WAL lets it read while the writer
commits) and uses it from one dedicated thread, so big reads never block the event loop and
never wait for a command. An in-memory database (tests) has only the writer's connection: it is
then used under the writer's lock.
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import TypeVar

from edge.protocol import ENVELOPE_VERSION, SYNC_VERSION, dumps
from edge.store.store import EventStore
from edge.store.writer import Writer

T = TypeVar("T")

_COLS = "e.seq, e.id, e.at, e.day, e.type, e.data"
_FROM_OUTBOX = (f"SELECT {_COLS} FROM outbox o JOIN events e ON e.seq = o.seq "  # noqa: S608
                "WHERE o.seq > ? ORDER BY o.seq LIMIT ?")
_FROM_LOG = f"SELECT {_COLS} FROM events e WHERE e.seq > ? AND e.seq <= ? ORDER BY e.seq LIMIT ?"  # noqa: S608


@dataclass(frozen=True, slots=True)
class Batch:
    """One ``events`` message: seqs ``first..last`` without gaps, already encoded."""

    first: int
    last: int
    count: int
    payload: bytes


@dataclass(frozen=True, slots=True)
class Limits:
    events: int = 200
    bytes: int = 256_000


def _envelope_json(site: str, seq: int, eid: str, at: str, day: str, kind: str,
                   data: str) -> str:
    """``Envelope.to_dict()`` as JSON, built from the row: ``data`` is stored as JSON already,
    and decoding and re-encoding every event made a 200-event batch cost ~40 ms."""
    head = json.dumps({"v": ENVELOPE_VERSION, "site": site, "seq": seq, "id": eid, "at": at,
                       "day": day, "type": kind}, ensure_ascii=False, separators=(",", ":"))
    return f'{head[:-1]},"data":{data}}}'


def read_batch(store: EventStore, after: int, limits: Limits, *, replay: bool = False,
               upto: int | None = None) -> Batch | None:
    """The next batch after ``after``: from the outbox, or from the event log when replaying.

    Stops at the size limits and at a hole in the seqs (a batch has no gaps inside). Written as
    text, not through ``edge.protocol.EventsBatch`` (a model per event would cost what the
    row-to-JSON shortcut saves); the hub reads it with that model, and
    ``tests/hub/test_wire_models.py`` checks that what this writes is what the model accepts.
    """
    if replay:
        rows = store.conn.execute(_FROM_LOG, (after, upto if upto is not None else after,
                                              limits.events)).fetchall()
    else:
        rows = store.conn.execute(_FROM_OUTBOX, (after, limits.events)).fetchall()
    events: list[str] = []
    size = 0
    first = last = 0
    site = store.site
    for seq, eid, at, day, kind, data in rows:
        if events and seq != last + 1:
            break
        text = _envelope_json(site, seq, eid, at, day, kind, data)
        n = len(text.encode())
        if events and size + n > limits.bytes:
            break
        events.append(text)
        size += n + 1
        first = first or seq
        last = seq
    if not events:
        return None
    head = dumps({"v": SYNC_VERSION, "site": store.site, "replay": replay})[:-1]
    payload = head + b',"events":[' + ",".join(events).encode() + b"]}"
    return Batch(first, last, len(events), payload)


def first_unacked(store: EventStore) -> int:
    """Seq of the last acknowledged event: everything up to it has left the outbox."""
    row = store.conn.execute("SELECT min(seq) FROM outbox").fetchone()
    return int(row[0]) - 1 if row[0] is not None else store.last_seq()


def counts(store: EventStore) -> tuple[int, int]:
    """``(last_seq, outbox rows)`` for the status message."""
    row = store.conn.execute("SELECT count(*) FROM outbox").fetchone()
    return store.last_seq(), int(row[0])


class SyncDb:
    """Runs store functions on the relay's own thread and connection."""

    def __init__(self, writer: Writer) -> None:
        self._writer = writer
        self._executor = ThreadPoolExecutor(1, thread_name_prefix="madoguchi-sync-db")
        self._own: EventStore | None = None
        self.path = writer.store.path

    async def open(self) -> None:
        if self.path != ":memory:":
            w = self._writer.store
            self._own = await self._call(lambda: EventStore(w.path, w.site))

    async def run(self, fn: Callable[[EventStore], T]) -> T:
        own = self._own
        if own is not None:
            return await self._call(lambda: fn(own))
        store = self._writer.store
        return await self._call(lambda: self._writer.read(lambda _state: fn(store)))

    async def _call(self, fn: Callable[[], T]) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, fn)

    async def close(self) -> None:
        own, self._own = self._own, None
        if own is not None:
            await self._call(own.close)
        self._executor.shutdown(wait=True)
