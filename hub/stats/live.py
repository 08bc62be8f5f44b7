"""Rollups kept at ingest: each event counted once, in the transaction that stores it.

Ingest calls ``observe`` for the events that just became contiguous for a site (each seq once,
in order: duplicates and replays never get there, ``hub.ingest.service``) and ``flush`` before
its commit, so the rollups and the events' contiguous seq commit together: a crash or rollback
loses both or neither, and nothing is counted twice. A site's ``Tally`` (the open tickets and
counters of its current day) is kept in memory; after a start or a rolled-back transaction it
is rebuilt from the store by following, without counting, the day's events up to the
contiguous seq that was already counted.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from edge.protocol import Envelope
from hub.stats import store
from hub.stats.rollup import Cells, Tally
from hub.store import Tx


async def load_tally(tx: Tx, site: str, upto: int) -> Tally:
    """The tally of ``site`` after its events ``<= upto`` (the current day's, followed silently:
    earlier days' are closed and already counted)."""
    tally = Tally()
    if upto <= 0:
        return tally
    start = await tx.last_day_opened(site, upto) or 1
    tally.feed(await tx.events(site, after=start - 1, upto=upto), None)
    return tally


class Rollups:
    """Per-site tallies and the cells of the transaction in progress."""

    def __init__(self) -> None:
        self.tallies: dict[str, Tally] = {}
        self.pending: dict[str, Cells] = {}

    async def observe(self, tx: Tx, site: str, before: int, fresh: Sequence[Envelope]) -> None:
        """Count ``fresh`` (seqs ``before + 1`` … in order) of ``site``."""
        tally = self.tallies.get(site)
        if tally is None:
            tally = self.tallies[site] = await load_tally(tx, site, before)
        tally.feed(fresh, self.pending.setdefault(site, {}))

    async def flush(self, tx: Tx) -> None:
        """Add the pending cells in ``tx`` (call just before its commit)."""
        pending, self.pending = self.pending, {}
        for site in sorted(pending):
            await store.add(tx, site, pending[site])

    def forget(self, sites: Iterable[str]) -> None:
        """The transaction rolled back: its cells are void and the tallies of ``sites`` may be
        ahead of the store (rebuilt on their next use)."""
        self.pending = {}
        for site in sites:
            self.tallies.pop(site, None)
