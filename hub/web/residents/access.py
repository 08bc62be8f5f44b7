"""W8: web page views per page, site and hour (Asia/Tokyo), for the statistics.

Counted in memory and added to ``web_access`` every few seconds and at shutdown: a page view
must cost no database access (the status page is meant to take thousands of requests a second).
Counts of a failed flush are kept and retried; a crash loses at most one interval. ``site`` is
the office a page belongs to (a ticket's, a web ticket page's, a reservation's), ``""`` for
pages of no one office (the status page of every office, the reservation start page).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import Counter
from collections.abc import Callable
from datetime import datetime
from zoneinfo import ZoneInfo

from aiohttp import web
from sqlalchemy import select

from hub.store import HubStore
from hub.store.schema import web_access
from hub.store.store import now_utc

_LOGGER = logging.getLogger(__name__)
TZ = ZoneInfo("Asia/Tokyo")
FLUSH_S = 5.0

# page -> site -> hour ("00".."23") -> views
Views = dict[str, dict[str, dict[str, int]]]


class AccessCounter:
    def __init__(self, store: HubStore, *, flush_s: float = FLUSH_S,
                 clock: Callable[[], datetime] = now_utc) -> None:
        self.store, self.flush_s, self.clock = store, flush_s, clock
        self.pending: Counter[tuple[str, str, str]] = Counter()  # (page, site, hour)
        self._task: asyncio.Task[None] | None = None

    def hit(self, page: str, site: str = "") -> None:
        """One view of ``page`` (status, ticket, webticket, reservation, …) of ``site`` now."""
        self.pending[(page, site, self.clock().astimezone(TZ).strftime("%Y-%m-%dT%H"))] += 1

    async def flush(self) -> None:
        todo, self.pending = self.pending, Counter()
        if not todo:
            return
        try:
            async with self.store.begin() as tx:
                for (page, site, hour), n in sorted(todo.items()):
                    stmt = tx.insert(web_access).values(page=page, site=site, hour=hour, count=n)
                    await tx.conn.execute(stmt.on_conflict_do_update(
                        index_elements=[web_access.c.page, web_access.c.site, web_access.c.hour],
                        set_={"count": web_access.c.count + stmt.excluded.count}))
        except Exception:
            self.pending.update(todo)
            raise

    async def _run(self) -> None:
        while True:
            await asyncio.sleep(self.flush_s)
            try:
                await self.flush()
            except Exception:
                _LOGGER.warning("web access counts not stored yet; retrying", exc_info=True)

    def start(self) -> None:
        self._task = asyncio.create_task(self._run(), name="web-access")

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        try:
            await self.flush()
        except Exception:
            _LOGGER.warning("web access counts lost at shutdown", exc_info=True)

    async def day(self, day: str) -> Views:
        """page -> site -> hour ("00".."23") -> views on ``day`` (stored plus not yet flushed);
        site ``""``: pages of no one office."""
        async with self.store.read() as tx:
            rows = (await tx.conn.execute(
                select(web_access.c.page, web_access.c.site, web_access.c.hour,
                       web_access.c.count)
                .where(web_access.c.hour.like(f"{day}T%")))).all()
        out: Views = {}
        for page, site, hour, n in [*rows, *((p, s, h, n) for (p, s, h), n in self.pending.items()
                                             if h.startswith(day + "T"))]:
            by_hour = out.setdefault(page, {}).setdefault(site, {})
            by_hour[hour[-2:]] = by_hour.get(hour[-2:], 0) + int(n)
        return out


ACCESS: web.AppKey[AccessCounter] = web.AppKey("residents_access", AccessCounter)


def count(request: web.Request, page: str, site: str = "") -> None:
    """One view of a resident page, for pages of other modules (web tickets, reservations);
    nothing when the residents module (which owns the counter) is not in this app."""
    counter = request.app.get(ACCESS)
    if counter is not None:
        counter.hit(page, site)
