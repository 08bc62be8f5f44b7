"""Telling the ingest's listeners what changed, from a task of their own.

Why not inline: listeners (web ticket rows, notices, resident pages) read and write the database;
awaited in the consumer they added ~30 ms to every group's ack and so to every event's way to
the hub's API. Here the consumer only merges its change into the pending one and goes on; the
task hands listeners everything that piled up since their last turn in one ``Change`` (sites
united, each site's events still in seq order), so a slow listener coalesces instead of lagging.
Listeners read the folds' current state, which is never older than the events they are told.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from edge.protocol import Envelope

_LOGGER = logging.getLogger(__name__)


@dataclass
class Change:
    """What one handled group changed: sites whose state, presence or config moved, and the
    events newly folded per site (in seq order)."""

    sites: set[str]
    events: dict[str, list[Envelope]]


ChangeListener = Callable[[Change], Awaitable[None]]


class Announcer:
    def __init__(self) -> None:
        self.listeners: list[ChangeListener] = []
        self._sites: set[str] = set()
        self._events: dict[str, list[Envelope]] = {}
        self._wake = asyncio.Event()
        self._idle = asyncio.Event()
        self._idle.set()
        self._task: asyncio.Task[None] | None = None

    def add(self, sites: set[str], events: dict[str, list[Envelope]]) -> None:
        """Queue a change (merged with what is not yet told); never waits."""
        if not (sites or events) or not self.listeners:
            return
        self._sites |= sites | set(events)
        for site, envs in events.items():
            self._events.setdefault(site, []).extend(envs)
        self._idle.clear()
        self._wake.set()
        if self._task is None or self._task.done():
            self._task = asyncio.create_task(self._run(), name="hub-ingest-listeners")

    async def settled(self) -> None:
        """Until every change queued so far has been told to the listeners."""
        await self._idle.wait()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._idle.set()

    async def _run(self) -> None:
        while True:
            await self._wake.wait()
            self._wake.clear()
            change = Change(self._sites, self._events)
            self._sites, self._events = set(), {}
            for listener in list(self.listeners):
                try:
                    await listener(change)
                except Exception:
                    _LOGGER.exception("ingest listener %r failed", listener)
            if not self._wake.is_set():
                self._idle.set()
