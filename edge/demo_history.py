"""The demo's statistics history: eight weeks of made-up past days for the demo's sites, so the
statistics pages (``/admin/stats``) and the status page's "usually quiet at these times" have
something to show the first time the demo runs.

The days are the stats benchmark's simulation (``edge.bench.stats_data``: arrivals by hour,
lognormal handling, transfers, absences) run on the demo's own site configs; the real
``hub.stats.rollup.Tally`` counts their events and only the counted cells are stored. The
events themselves are not (their seqs belong to the running sites), so ``madoguchi hub stats
rebuild`` on a demo database forgets this history: it is a demo's, marked as such in the banner.
"""

from __future__ import annotations

import json
import tempfile
from datetime import date, timedelta
from pathlib import Path

from edge.bench.stats_data import WEEKDAY_FACTOR, day_rows, site_plans
from edge.domain.calendar import day as calendar_day
from edge.protocol import ENVELOPE_VERSION, Envelope
from hub.stats.rollup import Cells, Tally
from hub.stats.store import add
from hub.store import HubStore

WEEKS = 8
LOAD = 0.7  # arrivals as a share of what the counters can handle in a day


async def seed_history(store: HubStore, tomls: list[str], today: date,
                       weeks: int = WEEKS) -> int:
    """Count ``weeks`` of simulated open days before ``today`` for each site; the tickets."""
    with tempfile.TemporaryDirectory(prefix="madoguchi-demo-history-") as tmp:
        for i, text in enumerate(tomls):
            (Path(tmp) / f"{i:02d}.toml").write_text(text, encoding="utf-8")
        plans = site_plans(Path(tmp))
    tickets = 0
    for plan in plans:
        cells: Cells = {}
        tally = Tally()
        d = today - timedelta(weeks=weeks)
        while d < today:
            cfg = plan.config
            if calendar_day(cfg.calendar, cfg.hours, d).open:
                n = max(1, round(plan.capacity * LOAD * WEEKDAY_FACTOR[d.weekday()]))
                tally.feed((Envelope(ENVELOPE_VERSION, plan.site, seq, eid, at, d.isoformat(),
                                     kind, json.loads(data))
                            for seq, eid, at, kind, data in day_rows(plan, d, n)), cells)
                tickets += n
            d += timedelta(days=1)
        async with store.begin() as tx:
            await add(tx, plan.site, cells)
    return tickets
