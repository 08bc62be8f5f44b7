"""History re-sent on the hub's request (``replay`` command), marked ``replay: true``.

Paced by broker PUBACKs, not by the hub's ack: a replay may cover events the hub already has,
so its ack need not move. At most ``window`` replay batches are unacknowledged by the broker.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable
from functools import partial

from edge.sync.outbox import Limits, SyncDb, read_batch

_LOGGER = logging.getLogger(__name__)


async def wait_event(event: asyncio.Event, timeout: float) -> None:
    """Wait for ``event`` at most ``timeout`` s (``asyncio.timeout``: on 3.11, ``wait_for``
    can swallow a cancellation that races with the event, and stopping would hang)."""
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()


class Replayer:
    def __init__(self, db: SyncDb, limits: Limits, window: int,
                 publish: Callable[[bytes], int | None], connected: Callable[[], bool]) -> None:
        self._db = db
        self._limits = limits
        self._window = window
        self._publish = publish
        self._connected = connected
        self._mids: set[int] = set()
        self._puback = asyncio.Event()
        self.replayed = 0

    def published(self, mid: int) -> None:
        if mid in self._mids:
            self._mids.discard(mid)
            self._puback.set()

    def disconnected(self) -> None:
        self._mids.clear()  # paho re-sends them after reconnecting
        self._puback.set()

    async def run(self, after: int, upto: int) -> None:
        """Publish ``after+1..upto`` from the event log."""
        while after < upto:
            while not self._connected() or len(self._mids) >= self._window:
                self._puback.clear()
                await wait_event(self._puback, 1.0)
            batch = await self._db.run(partial(read_batch, after=after, limits=self._limits,
                                               replay=True, upto=upto))
            if batch is None:
                break
            mid = self._publish(batch.payload)
            if mid is None:
                continue
            self._mids.add(mid)
            self.replayed += batch.count
            after = batch.last
        _LOGGER.info("replayed events up to seq %d", after)
