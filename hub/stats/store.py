"""Adding rollup cells to ``stats_rollup``: one upsert per cell, in the caller's transaction.

Why an upsert that adds: a cell's row may already hold earlier events of the same day and
dimensions (the previous group, or another hour of the same day); deltas are added, the maximum
kept. Idempotence is not this function's: the caller hands each event's deltas once, in the
transaction that marks the event folded (``hub.stats.live``), or rebuilds from scratch
(``hub.stats.rebuild``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from sqlalchemy import case, delete

from hub.stats.rollup import Cells
from hub.stats.tables import stats_rollup
from hub.store import Tx

CHUNK = 2000
_DIMS = ("day", "measure", "hour", "service", "counter", "staff", "channel", "bucket")


def rows(site: str, cells: Cells) -> list[dict[str, Any]]:
    """The cells as ``stats_rollup`` rows (sorted: the same lock order in every writer)."""
    return [{"site": site, **dict(zip(_DIMS, key, strict=True)), "n": c.n, "total": c.total,
             "max_s": c.max_s} for key, c in sorted(cells.items())]


async def add(tx: Tx, site: str, cells: Cells) -> None:
    """Add ``cells`` of ``site`` to the rollups."""
    if not cells:
        return
    values = rows(site, cells)
    stmt = tx.insert(stats_rollup)
    t = stats_rollup.c
    stmt = stmt.on_conflict_do_update(
        index_elements=[t.site, *(t[d] for d in _DIMS)],
        set_={"n": t.n + stmt.excluded.n, "total": t.total + stmt.excluded.total,
              "max_s": case((stmt.excluded.max_s > t.max_s, stmt.excluded.max_s),
                            else_=t.max_s)})
    for i in range(0, len(values), CHUNK):
        await tx.conn.execute(stmt, values[i:i + CHUNK])


async def clear(tx: Tx, sites: Iterable[str] | None) -> None:
    """Forget the rollups of ``sites`` (None: every site), before a rebuild."""
    stmt = delete(stats_rollup)
    if sites is not None:
        stmt = stmt.where(stats_rollup.c.site.in_(list(sites)))
    await tx.conn.execute(stmt)
