"""The status page's "usually quiet" hours per office, read from ``stats_rollup`` a few times an
hour and kept in memory: the page is rendered from memory (thousands of requests a second must
not each query the history), and history before today changes at most through a late replay or
a rebuild, which a refresh every ``REFRESH_S`` picks up. The rule itself is ``quiet.levels``.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import logging
from collections import defaultdict
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from markupsafe import Markup, escape
from sqlalchemy import func, select

from hub.kit.live import LiveSites
from hub.stats.tables import stats_rollup
from hub.store import HubStore
from hub.store.store import now_utc
from hub.web.residents.access import TZ
from hub.web.residents.quiet import WEEKS, Level, Row, Span, clock_minutes, levels, quiet_ranges

_LOGGER = logging.getLogger(__name__)
REFRESH_S = 300.0


@dataclass(frozen=True)
class Section:
    """What the page shows for one office and the chosen weekday (times: minutes of the day)."""

    weekday: int
    open: bool  # the office opens on that weekday (else only the other weekdays are offered)
    weekdays: tuple[int, ...]  # every weekday with enough history (the picker's links)
    hours: tuple[tuple[int, int, Level], ...]  # (start, end, level) per open hour; () if too little
    ranges: tuple[tuple[int, int], ...]  # the quiet stretches, (start, end)


class QuietHours:
    def __init__(self, store: HubStore, live: LiveSites | None, *,
                 refresh_s: float = REFRESH_S, clock: Callable[[], datetime] = now_utc) -> None:
        self.store, self.live, self.refresh_s, self.clock = store, live, refresh_s, clock
        self.version = 0  # changes whenever ``by_site`` does (part of the page cache's key)
        self.by_site: dict[str, dict[int, list[tuple[int, Level]]]] = {}
        self.spans: dict[str, dict[int, Span]] = {}
        self._task: asyncio.Task[None] | None = None

    async def history(self, today: dt.date) -> dict[str, list[Row]]:
        """Site -> (day, hour, tickets issued) over the ``WEEKS`` weeks before ``today``."""
        since = (today - dt.timedelta(weeks=WEEKS)).isoformat()
        r = stats_rollup.c
        async with self.store.read() as tx:
            rows = (await tx.conn.execute(
                select(r.site, r.day, r.hour, func.sum(r.n))
                .where(r.measure == "issued", r.day >= since, r.day < today.isoformat(),
                       r.hour >= 0)
                .group_by(r.site, r.day, r.hour))).all()
        out: dict[str, list[Row]] = defaultdict(list)
        for site, day, hour, n in rows:
            out[str(site)].append((str(day), int(hour), int(n or 0)))
        return out

    async def refresh(self) -> None:
        today = self.clock().astimezone(TZ).date()
        history = await self.history(today)
        spans = {site: dict(fold.config.hours)
                 for site, fold in list((self.live.all() if self.live else {}).items())
                 if fold.config is not None and fold.config.hours}
        by_site = {site: got for site in sorted(spans)
                   if (got := levels(history.get(site, ()), spans[site]))}
        if (by_site, spans) != (self.by_site, self.spans):
            self.by_site, self.spans = by_site, spans
            self.version += 1

    def section(self, site: str, weekday: int) -> Section | None:
        """None when the office has too little history on every weekday (nothing is said)."""
        got = self.by_site.get(site)
        if not got:
            return None
        levelled = got.get(weekday, [])
        span = self.spans[site].get(weekday)
        if span is None or not levelled:
            return Section(weekday, span is not None, tuple(sorted(got)), (), ())
        start, end = clock_minutes(span[0]), clock_minutes(span[1])

        def clip(a: int, b: int) -> tuple[int, int]:
            return max(a * 60, start), min(b * 60, end)

        hours = tuple((*clip(h, h + 1), lv) for h, lv in levelled)
        ranges = tuple(clip(a, b) for a, b in quiet_ranges(levelled))
        return Section(weekday, True, tuple(sorted(got)), hours, ranges)

    async def _run(self) -> None:
        while True:
            try:
                await self.refresh()
            except Exception:
                _LOGGER.warning("usual quiet hours not refreshed; keeping the last",
                                exc_info=True)
            await asyncio.sleep(self.refresh_s)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="residents-quiet")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task


def clock_text(t: Mapping[str, Any], minute: int) -> str:
    """A time of day in the page's words: 14時, 8時30分; 14:00, 8:30."""
    h, m = divmod(minute, 60)
    return str(t["quiet_clock" if m == 0 else "quiet_clock_min"]).format(h=h, m=m)



def quiet_sentence(t: Mapping[str, Any], section: Section, day: str) -> Markup:
    """「日曜日は、14時〜16時ごろがふだんすいています。」 with each range kept on one line
    ("14:00–" / "16:00" on two lines reads as two times, not a range)."""
    ranges = escape(t["quiet_join"]).join(
        Markup('<span class="nowrap">{}</span>').format(
            str(t["quiet_range"]).format(a=clock_text(t, a), b=clock_text(t, b)))
        for a, b in section.ranges)
    return escape(t["quiet_is"]).format(day=day, ranges=ranges)
