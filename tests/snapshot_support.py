"""A site's days driven through the real Writer, for the snapshot and archive tests.

``python tests/snapshot_support.py DB`` runs such days on DB until killed: short business days
(a few dozen tickets, a close, the next morning's rollover), the hub's acknowledgement of
everything committed, and archiving with a retention of a few days, so that a SIGKILL at a
moment lands in a day close (snapshot written with its events) or in archiving (a file
written, rows deleted). It prints ``seq N`` after each committed command, so the parent knows
what was acknowledged, and ``closing`` / ``archiving`` just before those steps, so the parent
can aim its kill at them. The clock restarts from the last event's time, so a restarted
child goes on where the killed one stopped.
"""

from __future__ import annotations

import asyncio
import random
import sys
from datetime import datetime, timedelta
from pathlib import Path

from support import morning, small_site

from edge.domain import commands as c
from edge.domain.clock import ManualClock
from edge.domain.model import SiteConfig
from edge.store.store import EventStore
from edge.store.writer import Writer

CONFIG: SiteConfig = small_site(range_size=200)
RETENTION_DAYS = 3


async def one_day(writer: Writer, clock: ManualClock, rng: random.Random,
                  tickets: int, say: bool) -> None:
    """Open two counters, issue and serve ``tickets`` tickets, close the day, go to the next
    morning (the next command rolls it over)."""
    for cid in ("1", "2"):
        await writer.execute(c.OpenCounter(cid))
    for _ in range(tickets):
        clock.advance(rng.uniform(5, 60))
        out = await writer.execute(c.Issue(rng.choice(("A", "B"))))
        if rng.random() < 0.7:
            await writer.execute(c.CallNext(rng.choice(("1", "2"))))
            await writer.execute(c.Finish(rng.choice(("1", "2"))))
        if say and out.events:
            print(f"seq {out.events[-1].seq}", flush=True)
    if say:
        print("closing", flush=True)
    await writer.execute(c.CloseDay())
    if say:
        print(f"seq {writer.state.seq}", flush=True)
    now = clock.now()
    clock.set(datetime.combine(now.date() + timedelta(days=1), morning().timetz()))


def start_time(store: EventStore) -> datetime:
    last = store.conn.execute("SELECT at FROM events ORDER BY seq DESC LIMIT 1").fetchone()
    return morning() if last is None else datetime.fromisoformat(last[0])


async def run_days(db: Path, days: int | None, *, tickets: int = 30, seed: int = 1,
                   archive: bool = True, say: bool = False) -> Writer:
    """Run ``days`` days (None: until killed) on ``db``; returns the open writer."""
    store = EventStore(db, CONFIG.site)
    clock = ManualClock(start_time(store))
    writer = Writer(store, CONFIG, clock)
    rng = random.Random(seed)
    n = 0
    while days is None or n < days:
        await one_day(writer, clock, rng, tickets, say)
        store.ack(store.last_seq())  # the hub has everything (the relay's ack, in short)
        if archive:
            if say:
                print("archiving", flush=True)
            await writer.archive_old(RETENTION_DAYS, chunk=50)
        n += 1
    return writer


if __name__ == "__main__":
    asyncio.run(run_days(Path(sys.argv[1]), None, seed=int(sys.argv[2]), say=True))
