"""The edge's SQLite store: event log with gap-free ``seq``, projections and outbox.

One connection, used by one writer thread. Every command commits its events, its outbox rows and
its projection rows in one transaction with ``synchronous=FULL`` so that a ticket is durable
before anything is printed or answered.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import sqlite_utils

from edge.domain.model import SiteConfig
from edge.domain.state import State, apply
from edge.protocol import ENVELOPE_VERSION, Envelope
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
        row = self.conn.execute("SELECT max(seq) FROM events").fetchone()
        return int(row[0] or 0)

    def events(self, after: int = 0, limit: int | None = None) -> Iterator[Envelope]:
        sql = "SELECT seq, id, at, day, type, data FROM events WHERE seq > ? ORDER BY seq"
        args: tuple[Any, ...] = (after,)
        if limit is not None:
            sql += " LIMIT ?"
            args = (after, limit)
        for seq, eid, at, day, kind, data in self.conn.execute(sql, args):
            yield self.envelope(seq, eid, at, day, kind, json.loads(data))

    def envelope(self, seq: int, eid: str, at: str, day: str, kind: str,
                 data: dict[str, Any]) -> Envelope:
        return Envelope(ENVELOPE_VERSION, self.site, seq, eid, at, day, kind, data)

    # --- the write path --------------------------------------------------------------------
    def commit(self, envelopes: list[Envelope], rows: Rows) -> None:
        """Write events, outbox rows and the projection rows they touched, atomically.

        ``rows`` holds the rows captured right after each event was applied. Raises StoreError
        (and nothing is written).
        """
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO events(seq, id, at, day, type, data) VALUES (?,?,?,?,?,?)",
                [(e.seq, e.id, e.at, e.day, e.type, e.data_json()) for e in envelopes],
            )
            conn.executemany("INSERT INTO outbox(seq) VALUES (?)", [(e.seq,) for e in envelopes])
            self._project(rows)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(str(exc)) from exc

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
    def load_state(self, config: SiteConfig) -> State:
        """Fold the whole event log into a fresh state (start-up and crash recovery)."""
        state = State(config)
        for ev in self.events():
            apply(state, ev)
        return state

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
