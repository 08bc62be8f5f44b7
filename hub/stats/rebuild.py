"""Rebuild the rollups of some or all sites from the raw events (``madoguchi hub stats rebuild``).

Each site in one transaction: its ``sites`` row is locked first (``FOR UPDATE`` on PostgreSQL;
SQLite has one writer), so the live ingest, which updates that row in every transaction that
adds events, waits for the rebuild of that site instead of adding cells the rebuild would then
delete or miss. The contiguous seq read under that lock is where the rebuild stops: exactly the
events the live rollups had counted, so a rebuild equals the live rollups (tested). The events
are read in chunks of ``CHUNK`` (a year of a busy site does not fit in memory as objects); the
cells of one site fit easily (a few hundred per day).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

from sqlalchemy import insert, select

from hub.stats import store
from hub.stats.rollup import Cells, Tally
from hub.stats.tables import stats_rollup
from hub.store import HubStore, Tx
from hub.store.schema import sites as sites_table

CHUNK = 20_000

Progress = Callable[[str, int, int], None]  # site, events done, events to do


async def _insert_fresh(tx: Tx, site: str, cells: Cells) -> None:
    """The site's rows were just deleted: plain inserts (COPY on PostgreSQL) beat upserts."""
    rows = store.rows(site, cells)
    if not rows:
        return
    if tx.dialect == "postgresql":
        raw = await tx.conn.get_raw_connection()
        cols = [c.name for c in stats_rollup.columns]
        await raw.driver_connection.copy_records_to_table(  # type: ignore[union-attr]
            stats_rollup.name, records=[tuple(r[c] for c in cols) for r in rows], columns=cols)
        return
    for i in range(0, len(rows), store.CHUNK):
        await tx.conn.execute(insert(stats_rollup), rows[i:i + store.CHUNK])


async def rebuild_site(tx: Tx, site: str, progress: Progress | None = None) -> int:
    """Replace ``site``'s rollups with a recount of its contiguous events; the events read."""
    row = (await tx.conn.execute(select(sites_table.c.last_seq_contiguous)
                                 .where(sites_table.c.site == site).with_for_update())).first()
    upto = int(row[0]) if row else 0
    await store.clear(tx, [site])
    tally, after = Tally(), 0
    cells: Cells = {}
    while after < upto:
        chunk = await tx.events(site, after=after, upto=upto, limit=CHUNK)
        if not chunk:
            break
        tally.feed(chunk, cells)
        after = chunk[-1].seq
        if progress is not None:
            progress(site, after, upto)
    await _insert_fresh(tx, site, cells)
    return after


async def rebuild(store_: HubStore, sites: list[str] | None = None,
                  progress: Progress | None = None) -> dict[str, Any]:
    """Rebuild ``sites`` (None: every site the hub has events of); a summary."""
    started = time.perf_counter()
    if sites is None:
        async with store_.read() as tx:
            sites = sorted(r["site"] for r in await tx.sites())
    done: dict[str, int] = {}
    for site in sites:
        async with store_.begin() as tx:
            done[site] = await rebuild_site(tx, site, progress)
    return {"sites": len(done), "events": sum(done.values()),
            "seconds": round(time.perf_counter() - started, 3)}
