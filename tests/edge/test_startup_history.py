"""Start-up does not grow with history (issue 18 Must show).

About a million events of a busy site (125 business days of 2,500 visitors, written in bulk by
``edge.bench.history_bulk``, not through the HTTP API) must start within 1.5x the start-up time
of a one-day log; after the edge has worked on it, ``rebuild`` still equals the live
projections and every snapshot equals a fold of the log.

A bulk-written log has no snapshots (a real edge stores one at every day close), like a
database from before snapshots: its first start folds everything once and stores one; the
start-up measured is the one after, as on every morning of a real site.
"""

from __future__ import annotations

import asyncio
import time
from datetime import date, datetime
from datetime import time as time_of_day
from pathlib import Path

import pytest
from support import TZ

from edge.bench.history_bulk import business_days, write_history
from edge.config import load_site_config
from edge.domain import commands as c
from edge.domain.clock import ManualClock
from edge.domain.model import SiteConfig
from edge.store.store import EventStore
from edge.store.writer import Writer

REPO = Path(__file__).resolve().parents[2]
START = date(2026, 4, 1)
PER_DAY = 2500  # a busy site: about 8,000 events a day


def _config(tmp: Path) -> SiteConfig:
    text = (REPO / "sites" / "nerima-main.toml").read_text(encoding="utf-8")
    path = tmp / "site.toml"
    path.write_text(text + "\n[calendar]\nnational_holidays = false\nyear_end = []\n",
                    encoding="utf-8")
    return load_site_config(path)


def _start_s(db: Path, config: SiteConfig, clock: ManualClock) -> float:
    """Open the store and the writer (migrations, newest snapshot, fold of what follows)."""
    t0 = time.perf_counter()
    writer = Writer(EventStore(db, config.site), config, clock)
    took = time.perf_counter() - t0
    writer.close()
    return took


def _best_start(db: Path, config: SiteConfig, clock: ManualClock, runs: int = 7) -> float:
    return min(_start_s(db, config, clock) for _ in range(runs))


@pytest.mark.slow
def test_a_million_events_start_as_fast_as_one_day(tmp_path: Path) -> None:
    config = _config(tmp_path)
    days = business_days(config, START, 125)
    big, small = tmp_path / "big.db", tmp_path / "small.db"
    events = write_history(big, config, days=len(days), tickets_per_day=PER_DAY,
                           start_day=START, seed=3, progress=False)
    assert 900_000 <= events <= 1_300_000
    write_history(small, config, days=1, tickets_per_day=PER_DAY, start_day=days[-1], seed=3,
                  progress=False)
    # the evening of the last day of both logs
    clock = ManualClock(datetime.combine(days[-1], time_of_day(23, 0), TZ))
    _start_s(big, config, clock)  # the first start of a long log without snapshots stores one
    store = EventStore(big, config.site)
    assert [s.seq for s in store.snapshots()] == [store.last_seq()]
    store.close()
    one_day, million = _best_start(small, config, clock), _best_start(big, config, clock)
    print(f"start-up: one day {one_day * 1000:.1f} ms, {events:,} events {million * 1000:.1f} ms")
    assert million <= 1.5 * one_day, (one_day, million)

    # the edge goes on working on the big log; the projections still come from the whole log
    asyncio.run(_work_a_morning(big, config, clock))
    store = EventStore(big, config.site)
    live = store.dump_projections()
    store.rebuild(config)
    assert store.dump_projections() == live
    checked = store.verify_snapshots(config)
    assert checked
    assert all(ok for _, ok in checked), checked
    store.close()


async def _work_a_morning(db: Path, config: SiteConfig, clock: ManualClock) -> None:
    writer = Writer(EventStore(db, config.site), config, clock)
    try:
        clock.advance(10 * 3600)  # 09:00 the next day: the first command rolls the day over
        counter = next(iter(config.counters))
        await writer.execute(c.OpenCounter(counter))
        service = config.counters[counter].services[0]
        for _ in range(20):
            clock.advance(30)
            out = await writer.execute(c.Issue(service))
            assert out.refused is None, out.refused
        for _ in range(10):
            clock.advance(60)
            assert (await writer.execute(c.CallNext(counter))).refused is None
            assert (await writer.execute(c.Finish(counter))).refused is None
        await writer.execute(c.CloseDay())
    finally:
        writer.close()
