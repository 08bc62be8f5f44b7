"""Years of a busy site's event log, written straight into the edge's SQLite in bulk.

Why not through the ``Writer``: it commits one command at a time with its projections, about
10,000 events a second at best; five years of a busy site (about 10 million events) would take
hours. The events themselves are what an edge writes: each business day is the discrete-event
simulation of ``edge.bench.stats_data`` (``Day``: the data fields ``edge.domain.commands``
makes, ``staff`` on staff actions, ticket numbers from each service's range, unique ids and
tokens, a ``DayClosed`` listing the tickets still live), so the statistics bench and this log
cannot drift apart. This module adds the envelope's ``day``, ``seq`` gap-free from 1 across
days, and the database: opened through ``EventStore`` (its schema, migrations and meta exactly),
events inserted with ``executemany`` in large transactions at ``synchronous=OFF``, no outbox
rows (the hub acknowledged everything), then the projections by ``EventStore.rebuild`` (the
same fold start-up and ``madoguchi rebuild`` use, so they cannot be wrong by construction).

Business days are Monday to Friday and open in the site's calendar; the last one is closed
(its ``DayClosed`` written), so a writer opened afterwards starts the next day with a
``DayOpened`` as after any night.
"""

from __future__ import annotations

import sys
import time
from datetime import date, timedelta
from pathlib import Path

from edge.bench.stats_data import day_rows, site_plan
from edge.domain.calendar import day as calendar_day
from edge.domain.model import SiteConfig
from edge.store.store import EventStore

_INSERT = "INSERT INTO events(seq, id, at, day, type, data) VALUES (?,?,?,?,?,?)"
_DAYS_PER_COMMIT = 25  # about 200,000 events a transaction at a busy site


def business_days(config: SiteConfig, start_day: date, days: int) -> list[date]:
    """The first ``days`` business days from ``start_day`` on (weekdays the calendar opens)."""
    out: list[date] = []
    d = start_day
    while len(out) < days:
        if d.weekday() < 5 and calendar_day(config.calendar, config.hours, d).open:
            out.append(d)
        d += timedelta(days=1)
    return out


def first_day(config: SiteConfig, days: int, before: date) -> date:
    """The start day of ``days`` business days whose last one is the last before ``before``."""
    d, n = before, 0
    while n < days:
        d -= timedelta(days=1)
        n += d.weekday() < 5 and calendar_day(config.calendar, config.hours, d).open
    return d


def write_history(db_path: str | Path, config: SiteConfig, *, days: int, tickets_per_day: int,
                  start_day: date, seed: int, progress: bool = True) -> int:
    """Write ``days`` business days of ``tickets_per_day`` visitors into a new database at
    ``db_path`` (refused if it holds events already) and its projections; returns the number of
    events. ``progress``: a line on stderr about every tenth of the days."""
    t0 = time.perf_counter()
    store = EventStore(db_path, config.site, durable=False)
    try:
        conn = store.conn
        if store.last_seq():
            raise ValueError(f"{db_path} holds events already: the history is written only "
                             "into a new database")
        conn.execute("PRAGMA journal_mode=OFF")  # bulk: nothing to roll back into but a new file
        conn.execute("PRAGMA synchronous=OFF")
        conn.execute("PRAGMA cache_size=-262144")  # 256 MiB: the unique index on ids stays hot
        plan = site_plan(0, config, "", seed)
        dates = business_days(config, start_day, days)
        step = max(1, len(dates) // 10)
        conn.execute("BEGIN")
        for n, d in enumerate(dates, 1):
            iso = d.isoformat()
            conn.executemany(_INSERT, [(seq, eid, at, iso, kind, data)
                                       for seq, eid, at, kind, data
                                       in day_rows(plan, d, tickets_per_day)])
            if n % _DAYS_PER_COMMIT == 0 or n == len(dates):
                conn.execute("COMMIT")
                if n < len(dates):
                    conn.execute("BEGIN")
            if progress and (n % step == 0 or n == len(dates)):
                print(f"history: {n:,}/{len(dates):,} days, {plan.seq:,} events, "
                      f"{time.perf_counter() - t0:.0f} s", file=sys.stderr, flush=True)
        if progress:
            print("history: rebuilding the projections …", file=sys.stderr, flush=True)
        store.rebuild(config)
        conn.execute("PRAGMA journal_mode=WAL")  # as EventStore runs it
        if progress:
            print(f"history: done, {plan.seq:,} events in {time.perf_counter() - t0:.0f} s",
                  file=sys.stderr, flush=True)
        return plan.seq
    finally:
        store.close()
