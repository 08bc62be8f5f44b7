"""The edge's SQLite store: event log with gap-free ``seq``, projections and outbox.

One connection, used by one writer thread. Every command commits its events, its outbox rows and
its projection rows in one transaction with ``synchronous=FULL`` so that a ticket is durable
before anything is printed or answered.
"""

from __future__ import annotations

import contextlib
import itertools
import json
import logging
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import sqlite_utils

from edge.domain import snapshot
from edge.domain.model import SiteConfig
from edge.domain.state import State, apply
from edge.protocol import ENVELOPE_VERSION, Envelope
from edge.store.archive import ArchiveError, EventArchive, EventRow
from edge.store.schema import PROJECTION_TABLES, migrate

_LOGGER = logging.getLogger(__name__)

_TICKET_COLS = (
    "id", "day", "number", "lap", "origin_service", "service", "stage", "state", "channel",
    "lang", "priority", "token", "issued_at", "queued_at", "queue_seq", "counter",
    "target_counter", "called_at", "finished_at", "calls", "checked_in_at",
)
_UPSERT_TICKET = (  # built from the fixed column list above, no outside input
    f"INSERT OR REPLACE INTO tickets ({', '.join(_TICKET_COLS)}) "  # noqa: S608
    f"VALUES ({', '.join(':' + c for c in _TICKET_COLS)})"
)
_DAY_EVENTS = frozenset({"DayOpened", "DayClosed"})
SNAPSHOTS_KEPT = 3  # the newest is used; older ones are the fallback if it cannot be read
# a start that had to fold more events than this (no snapshot yet: a database from before
# snapshots, or one written in bulk) stores a snapshot, so the next start is quick again
SNAPSHOT_AFTER_EVENTS = 20_000


class Rows:
    """Projection rows touched by events, captured right after each ``apply``.

    Capturing per event (not per batch) matters: a rollover applies DayClosed and DayOpened in
    one batch, and DayOpened clears the closed day's tickets from the state.
    """

    def __init__(self) -> None:
        self.tickets: dict[str, dict[str, Any]] = {}
        self.counters: dict[str, dict[str, Any]] = {}
        self.service_days: dict[tuple[str, str], tuple[Any, ...]] = {}
        self.day: str | None = None

    def capture(self, state: State, ev: Envelope) -> None:
        d = ev.data
        if ev.type in _DAY_EVENTS:
            for ticket in state.tickets.values():
                self.tickets[ticket.id] = ticket.to_row()
            for c in state.counters.values():
                self.counters[c.id] = c.to_row()
            self.day = json.dumps({"day": state.day, "open": state.day_open})
            return
        t = state.tickets[d["ticket"]] if "ticket" in d else None
        if t is not None:
            self.tickets[t.id] = t.to_row()
        for key in ("counter", "to_counter"):
            cid = d.get(key)
            if cid:
                self.counters[cid] = state.counter(cid).to_row()
        if ev.type == "TicketIssued" and t is not None:
            sd = state.services[t.origin_service]
            self.service_days[(ev.day, t.origin_service)] = (
                ev.day, t.origin_service, sd.last_number, sd.lap, sd.issued)


class StoreError(Exception):
    """The database could not take a write (disk full, I/O error); nothing was committed."""


@dataclass(frozen=True, slots=True)
class Snapshot:
    """A stored snapshot: the state after event ``seq`` (edge/domain/snapshot.py)."""

    seq: int
    at: str
    day: str | None
    blob: bytes


class EventStore:
    def __init__(self, path: str | Path, site: str, *, durable: bool = True) -> None:
        self.path = str(path)
        self.site = site
        if self.path != ":memory:":
            Path(self.path).parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
        self.conn = conn
        self.db = sqlite_utils.Database(conn)
        if self.path != ":memory:":
            self.db.enable_wal()
        conn.execute(f"PRAGMA synchronous={'FULL' if durable else 'OFF'}")
        conn.execute("PRAGMA foreign_keys=ON")
        conn.execute("PRAGMA busy_timeout=5000")
        self.schema_version = migrate(self.db)
        self.archive = EventArchive(Path(self.path + ".archive")) if self.path != ":memory:" \
            else None
        stored = self.meta("site")
        if stored is None:
            self.set_meta("site", site)
        elif stored != site:
            raise StoreError(f"database belongs to site {stored!r}, not {site!r}")

    # --- meta ------------------------------------------------------------------------------
    def ping(self) -> bool:
        """The database answers a read (called on the writer's thread)."""
        return bool(self.conn.execute("SELECT 1").fetchone() == (1,))

    def meta(self, key: str) -> str | None:
        row = self.conn.execute("SELECT value FROM meta WHERE key=?", (key,)).fetchone()
        return None if row is None else str(row[0])

    def set_meta(self, key: str, value: str) -> None:
        self.conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES (?, ?)", (key, value))

    # --- events ----------------------------------------------------------------------------
    def last_seq(self) -> int:
        """The newest event's seq (archived ones count: seqs never restart)."""
        row = self.conn.execute("SELECT max(seq) FROM events").fetchone()
        return max(int(row[0] or 0), int(self.meta("archived_upto") or 0))

    def events(self, after: int = 0, limit: int | None = None) -> Iterator[Envelope]:
        """Events with seq > ``after`` in order: the archived ones first (edge/store/archive.py),
        then the live ones they do not cover."""
        for seq, eid, at, day, kind, data in itertools.islice(self._rows(after), limit):
            yield self.envelope(seq, eid, at, day, kind, json.loads(data))

    def _rows(self, after: int) -> Iterator[EventRow]:
        archived = int(self.meta("archived_upto") or 0)
        if after < archived:
            if self.archive is None:
                raise ArchiveError("an in-memory store has no archive")
            self.archive.check(archived)
            for row in self.archive.rows(after):
                if row[0] > archived:
                    break  # a file written just before a crash; its rows are still live
                yield row
            after = archived
        yield from self.conn.execute(
            "SELECT seq, id, at, day, type, data FROM events WHERE seq > ? ORDER BY seq",
            (after,))

    def envelope(self, seq: int, eid: str, at: str, day: str, kind: str,
                 data: dict[str, Any]) -> Envelope:
        return Envelope(ENVELOPE_VERSION, self.site, seq, eid, at, day, kind, data)

    # --- the write path --------------------------------------------------------------------
    def commit(self, envelopes: list[Envelope], rows: Rows,
               state_after: State | None = None) -> None:
        """Write events, outbox rows and the projection rows they touched, atomically.

        ``rows`` holds the rows captured right after each event was applied; ``state_after``
        (a day close) is stored as the snapshot at the last event's seq in the same
        transaction, so a crash leaves both or neither. Raises StoreError (and nothing is
        written).
        """
        conn = self.conn
        with self._transaction():
            conn.executemany(
                "INSERT INTO events(seq, id, at, day, type, data) VALUES (?,?,?,?,?,?)",
                [(e.seq, e.id, e.at, e.day, e.type, e.data_json()) for e in envelopes],
            )
            conn.executemany("INSERT INTO outbox(seq) VALUES (?)", [(e.seq,) for e in envelopes])
            self._project(rows)
            if state_after is not None:
                self._put_snapshot(state_after)

    def _project(self, rows: Rows) -> None:
        conn = self.conn
        conn.executemany(_UPSERT_TICKET, list(rows.tickets.values()))
        conn.executemany(
            "INSERT OR REPLACE INTO counters(id, open, current) VALUES (:id, :open, :current)",
            list(rows.counters.values()),
        )
        conn.executemany(
            "INSERT OR REPLACE INTO service_days(day, service, last_number, lap, issued) "
            "VALUES (?,?,?,?,?)",
            list(rows.service_days.values()),
        )
        if rows.day is not None:
            self.set_meta("day", rows.day)

    # --- reading back ----------------------------------------------------------------------
    # --- snapshots -------------------------------------------------------------------------
    def _put_snapshot(self, state: State) -> None:
        """Inside a transaction: store ``state`` and keep the newest SNAPSHOTS_KEPT."""
        self.conn.execute(
            "INSERT OR REPLACE INTO snapshots(seq, at, day, format, state) VALUES (?,?,?,?,?)",
            (state.seq, state.last_at.isoformat() if state.last_at else "", state.day,
             snapshot.FORMAT, snapshot.encode(state)))
        self.conn.execute(
            "DELETE FROM snapshots WHERE seq NOT IN "
            "(SELECT seq FROM snapshots ORDER BY seq DESC LIMIT ?)", (SNAPSHOTS_KEPT,))

    @contextlib.contextmanager
    def _transaction(self) -> Iterator[None]:
        """One write transaction; any SQLite error rolls it back and becomes StoreError."""
        try:
            self.conn.execute("BEGIN IMMEDIATE")
            yield
            self.conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise StoreError(str(exc)) from exc
        except BaseException:
            if self.conn.in_transaction:
                self.conn.execute("ROLLBACK")
            raise

    def save_snapshot(self, state: State) -> None:
        """Store a snapshot of ``state`` on its own (after a long start-up fold)."""
        with self._transaction():
            self._put_snapshot(state)

    def replace_snapshots(self, state: State) -> None:
        """Drop every stored snapshot for one of ``state`` (a fold of the whole log)."""
        with self._transaction():
            self.conn.execute("DELETE FROM snapshots")
            self._put_snapshot(state)

    def snapshots(self) -> list[Snapshot]:
        """Stored snapshots, newest first."""
        return [Snapshot(seq, at, day, blob) for seq, at, day, blob in self.conn.execute(
            "SELECT seq, at, day, state FROM snapshots WHERE format = ? ORDER BY seq DESC",
            (snapshot.FORMAT,))]

    def load_state(self, config: SiteConfig) -> State:
        """The state now (start-up and crash recovery): the newest readable snapshot, then the
        events after it. Without one, the whole log is folded, and a snapshot is stored if
        that took many events."""
        state = State(config)
        last = self.last_seq()
        for snap in self.snapshots():
            if snap.seq > last:
                continue  # cannot happen (one transaction), but never load a future state
            try:
                state = snapshot.decode(config, snap.blob)
                break
            except snapshot.SnapshotError as exc:
                _LOGGER.warning("snapshot at seq %d unreadable (%s); trying an older one",
                                snap.seq, exc)
        folded = 0
        for ev in self.events(after=state.seq):
            apply(state, ev)
            folded += 1
        if folded >= SNAPSHOT_AFTER_EVENTS:
            try:
                self.save_snapshot(state)
                _LOGGER.info("folded %d events at start-up; stored a snapshot at seq %d",
                             folded, state.seq)
            except StoreError:
                _LOGGER.exception("could not store a snapshot (the next start folds again)")
        return state

    def verify_snapshots(self, config: SiteConfig) -> list[tuple[int, bool]]:
        """Fold the whole log and compare the state at each stored snapshot's seq with it:
        ``(seq, equal)`` per snapshot, oldest first (``edge rebuild`` reports them)."""
        wanted = {s.seq: s.blob for s in self.snapshots()}
        out: list[tuple[int, bool]] = []
        state = State(config)
        if 0 in wanted:
            out.append((0, snapshot.to_dict(snapshot.decode(config, wanted[0]))
                        == snapshot.to_dict(state)))
        for ev in self.events():
            apply(state, ev)
            if ev.seq in wanted:
                try:
                    stored = snapshot.to_dict(snapshot.decode(config, wanted[ev.seq]))
                except snapshot.SnapshotError:
                    out.append((ev.seq, False))
                    continue
                out.append((ev.seq, stored == snapshot.to_dict(state)))
        return out

    # --- archiving (edge/store/archive.py) --------------------------------------------------
    def archivable_upto(self, today: str, retention_days: int) -> int:
        """The highest seq that may leave the live database: older than the retention period,
        acknowledged by the hub (not in the outbox), and covered by a snapshot (start-up never
        needs it)."""
        cutoff = (date.fromisoformat(today) - timedelta(days=retention_days)).isoformat()
        row = self.conn.execute("SELECT min(seq) FROM outbox").fetchone()
        acked = int(row[0]) - 1 if row[0] is not None else self.last_seq()
        snap = self.conn.execute("SELECT max(seq) FROM snapshots").fetchone()[0] or 0
        return min(acked, int(snap), self._last_seq_before(cutoff))

    def _last_seq_before(self, day: str) -> int:
        """The last live seq of a business day before ``day`` (0: none). Binary search by
        primary key: days never go back as seqs grow, and live seqs have no gaps, so this
        reads ~20 rows where a scan of the day column would read millions."""
        lo, hi = self.conn.execute("SELECT min(seq), max(seq) FROM events").fetchone()
        if lo is None:
            return 0

        def day_of(seq: int) -> str:
            return str(self.conn.execute("SELECT day FROM events WHERE seq = ?",
                                         (seq,)).fetchone()[0])

        if day_of(lo) >= day:
            return 0
        while lo < hi:  # invariant: day_of(lo) < day
            mid = (lo + hi + 1) // 2
            if day_of(mid) < day:
                lo = mid
            else:
                hi = mid - 1
        return int(lo)

    def archive_rows(self, upto: int, limit: int) -> list[EventRow]:
        """The next live rows to archive (consecutive, after the archived ones)."""
        after = int(self.meta("archived_upto") or 0)
        return self.conn.execute(
            "SELECT seq, id, at, day, type, data FROM events WHERE seq > ? AND seq <= ? "
            "ORDER BY seq LIMIT ?", (after, upto, limit)).fetchall()

    def drop_archived(self, last: int) -> int:
        """After the archive file holding events up to ``last`` is durable: delete them from
        the live database and record how far the archive reaches, in one transaction."""
        with self._transaction():
            cur = self.conn.execute("DELETE FROM events WHERE seq <= ?", (last,))
            self.set_meta("archived_upto", str(last))
        return cur.rowcount

    def rebuild(self, config: SiteConfig, batch: int = 20_000) -> State:
        """Recompute every projection table from the event log, in one transaction."""
        state = State(config)
        conn = self.conn
        conn.execute("BEGIN IMMEDIATE")
        try:
            for table in PROJECTION_TABLES:
                if table != "meta":
                    conn.execute(f"DELETE FROM {table}")  # noqa: S608 (fixed names)
            conn.execute("DELETE FROM meta WHERE key = 'day'")
            conn.execute("INSERT OR REPLACE INTO meta(key, value) VALUES ('site', ?)",
                         (self.site,))
            rows = Rows()
            for n, ev in enumerate(self.events(), 1):
                apply(state, ev)
                rows.capture(state, ev)
                if n % batch == 0:
                    self._project(rows)
                    rows = Rows()
            self._project(rows)
            conn.execute("COMMIT")
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        return state

    def dump_projections(self) -> dict[str, list[tuple[Any, ...]]]:
        """Every projection row, sorted: what 'rebuild equals live' compares."""
        return {
            t: sorted(self.conn.execute(f"SELECT * FROM {t}").fetchall(), key=repr)  # noqa: S608
            for t in PROJECTION_TABLES
        }

    # --- outbox (read by the sync relay) ---------------------------------------------------
    def outbox(self, limit: int = 500) -> list[Envelope]:
        rows = self.conn.execute(
            "SELECT e.seq, e.id, e.at, e.day, e.type, e.data FROM outbox o "
            "JOIN events e ON e.seq = o.seq ORDER BY o.seq LIMIT ?", (limit,)
        ).fetchall()
        return [self.envelope(s, i, a, d, k, json.loads(x)) for s, i, a, d, k, x in rows]

    def ack(self, upto_seq: int) -> int:
        """Drop outbox rows the hub has acknowledged (seq <= upto_seq)."""
        cur = self.conn.execute("DELETE FROM outbox WHERE seq <= ?", (upto_seq,))
        return cur.rowcount

    def ticket_row(self, token: str) -> dict[str, Any] | None:
        cur = self.conn.execute(
            f"SELECT {', '.join(_TICKET_COLS)} FROM tickets WHERE token = ?", (token,)  # noqa: S608
        )
        row = cur.fetchone()
        return None if row is None else dict(zip(_TICKET_COLS, row, strict=True))

    def close(self) -> None:
        self.conn.close()
