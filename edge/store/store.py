"""The edge's SQLite store: event log with gap-free ``seq``, projections and outbox.

One connection, used by one writer thread. Every command commits its events, its outbox rows and
its projection rows in one transaction with ``synchronous=FULL`` so that a ticket is durable
before anything is printed or answered.
"""

from __future__ import annotations

import json
import logging
import sqlite3
from collections.abc import Iterable, Iterator
from datetime import datetime
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
    "target_counter", "called_at", "finished_at", "calls",
)
_UPSERT_TICKET = (  # built from the fixed column list above, no outside input
    f"INSERT OR REPLACE INTO tickets ({', '.join(_TICKET_COLS)}) "  # noqa: S608
    f"VALUES ({', '.join(':' + c for c in _TICKET_COLS)})"
)
_DAY_EVENTS = frozenset({"DayOpened", "DayClosed"})


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
            yield Envelope(ENVELOPE_VERSION, self.site, seq, eid, at, day, kind, json.loads(data))

    def envelope(self, seq: int, eid: str, at: str, day: str, kind: str,
                 data: dict[str, Any]) -> Envelope:
        return Envelope(ENVELOPE_VERSION, self.site, seq, eid, at, day, kind, data)

    # --- the write path --------------------------------------------------------------------
    def commit(self, envelopes: list[Envelope], state: State) -> None:
        """Write events, outbox rows and the projection rows they touched, atomically.

        ``state`` must already have the events applied. Raises StoreError (rolled back).
        """
        conn = self.conn
        try:
            conn.execute("BEGIN IMMEDIATE")
            conn.executemany(
                "INSERT INTO events(seq, id, at, day, type, data) VALUES (?,?,?,?,?,?)",
                [(e.seq, e.id, e.at, e.day, e.type, e.data_json()) for e in envelopes],
            )
            conn.executemany("INSERT INTO outbox(seq) VALUES (?)", [(e.seq,) for e in envelopes])
            self._project(envelopes, state)
            conn.execute("COMMIT")
        except sqlite3.Error as exc:
            if conn.in_transaction:
                conn.execute("ROLLBACK")
            raise StoreError(str(exc)) from exc

    def _project(self, envelopes: Iterable[Envelope], state: State) -> None:
        tickets: set[str] = set()
        counters: set[str] = set()
        services: set[str] = set()
        day_change = False
        expired: list[tuple[str, str]] = []
        for e in envelopes:
            d = e.data
            if e.type in _DAY_EVENTS:
                day_change = True
                if e.type == "DayClosed":
                    finished_at = datetime.fromisoformat(e.at).isoformat()
                    expired.extend((finished_at, tid) for tid in d.get("expired", ()))
                continue
            if "ticket" in d:
                tickets.add(d["ticket"])
            for key in ("counter", "to_counter"):
                if d.get(key):
                    counters.add(d[key])
            if e.type == "TicketIssued":
                services.add(d["service"])
        if expired:
            # after a rollover (DayClosed + DayOpened in one batch) the closed day's tickets
            # are no longer in ``state``: mark them expired here, as ``apply`` did
            self.conn.executemany(
                "UPDATE tickets SET state = 'expired', finished_at = ? WHERE id = ?", expired)
        if day_change:
            tickets.update(state.tickets)
            counters.update(state.counters)
            self.set_meta("day", json.dumps({"day": state.day, "open": state.day_open}))
        self._write_rows(state, tickets, counters, services)

    def _write_rows(self, state: State, tickets: Iterable[str], counters: Iterable[str],
                    services: Iterable[str]) -> None:
        conn = self.conn
        conn.executemany(_UPSERT_TICKET, [state.tickets[t].to_row() for t in tickets
                                          if t in state.tickets])
        conn.executemany(
            "INSERT OR REPLACE INTO counters(id, open, current) VALUES (:id, :open, :current)",
            [state.counter(c).to_row() for c in counters],
        )
        conn.executemany(
            "INSERT OR REPLACE INTO service_days(day, service, last_number, lap, issued) "
            "VALUES (?,?,?,?,?)",
            [(state.day, s, sd.last_number, sd.lap, sd.issued)
             for s in services if (sd := state.services.get(s)) is not None],
        )

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
            pending: list[Envelope] = []
            for ev in self.events():
                if ev.type == "DayOpened" and state.day is not None:
                    # the previous day's rows are final once a new day opens
                    self._project(pending, state)
                    pending = []
                apply(state, ev)
                pending.append(ev)
                if len(pending) >= batch:
                    self._project(pending, state)
                    pending = []
            self._project(pending, state)
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
