"""Keeps the status snapshot and the ticket streams current, told by ingest (through the
kit's ``LiveSites``) what changed.

Why debounced: a busy hub handles many event groups a second; rebuilding after a short pause
(``debounce_s``) folds a burst into one snapshot, and the pause is far below what a person
notices. A timer rebuilds as well, since "open now" changes with the clock, not with events.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import secrets
from collections.abc import Callable
from datetime import datetime
from typing import Any

from edge.aio import wait_event
from hub.ingest.service import Change
from hub.kit.live import LiveSites
from hub.store.store import now_utc
from hub.web.residents.broadcast import Broadcast
from hub.web.residents.snapshot import Snapshot, build_status, encode
from hub.web.residents.tickets import Watchers

_LOGGER = logging.getLogger(__name__)


class LiveFeed:
    def __init__(self, live: LiveSites, *, debounce_s: float = 0.05, refresh_s: float = 30.0,
                 clock: Callable[[], datetime] = now_utc, main: str | None = None) -> None:
        self.live = live
        self.main = main  # the main office, listed first (HubSettings.main_site)
        self.debounce_s, self.refresh_s, self.clock = debounce_s, refresh_s, clock
        self.epoch = secrets.token_hex(4)  # ETags of another process (or run) never match
        self.status = Broadcast()
        self.tickets = Broadcast(max_clients=50_000)
        self.watchers = Watchers()
        self.snapshot: Snapshot = encode(0, {"at": None, "sites": [], "compare": [],
                                             "site_names": {}}, self.epoch)
        # the rendered status page per (version, lang, weekday shown, today, quiet hours' version)
        self.pages: dict[tuple[int, str, int, int, int], bytes] = {}
        self.online: dict[str, bool] = {}
        self._dirty: set[str] = set()
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        await self.rebuild()
        self.live.listen(self.on_change)
        self._task = asyncio.create_task(self._run(), name="residents-feed")

    async def stop(self) -> None:
        self.live.unlisten(self.on_change)
        self.status.close()
        self.tickets.close()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task

    async def on_change(self, change: Change) -> None:
        self._dirty |= change.sites
        self._wake.set()

    async def _run(self) -> None:
        while True:
            await wait_event(self._wake, self.refresh_s)
            await asyncio.sleep(self.debounce_s)
            self._wake.clear()
            sites, self._dirty = self._dirty, set()
            try:
                await self.rebuild()
                self.watchers.refresh(sites, self.live.all())
            except Exception:
                _LOGGER.exception("resident status rebuild failed; next change retries")

    async def _presence(self) -> dict[str, bool]:
        try:
            async with self.live.store.read() as tx:
                self.online = {r["site"]: bool(r["online"]) for r in await tx.sites()}
        except Exception:  # keep the last known presence: the figures are still worth showing
            _LOGGER.warning("cannot read site presence; using the last known", exc_info=True)
        return self.online

    async def rebuild(self) -> None:
        """A new snapshot if anything but its time changed; pushed to every status stream."""
        data = build_status(self.live.all(), await self._presence(), self.clock(),
                            main=self.main)
        if self.snapshot.version and _same(data, self.snapshot.data):
            return
        self.snapshot = encode(self.snapshot.version + 1, data, self.epoch)
        self.pages.clear()
        self.status.publish(self.snapshot.sse)


def _same(a: dict[str, Any], b: dict[str, Any]) -> bool:
    return {k: v for k, v in a.items() if k != "at"} == {k: v for k, v in b.items() if k != "at"}
