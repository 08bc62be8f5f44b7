"""Small asyncio helpers shared by the edge and the hub."""

from __future__ import annotations

import asyncio
import contextlib


async def wait_event(event: asyncio.Event, timeout: float | None) -> bool:
    """Wait for ``event`` at most ``timeout`` seconds (None: no limit); True if it is set.

    Why not ``asyncio.wait_for(event.wait(), timeout)``: on Python 3.11 it can swallow a
    cancellation that arrives just as the event fires (CPython gh-86296), and a ``while True``
    loop built on it then never stops, so whoever awaits the cancelled task hangs.
    ``asyncio.timeout`` counts cancellations and always lets a real one through.
    """
    with contextlib.suppress(TimeoutError):
        async with asyncio.timeout(timeout):
            await event.wait()
    return event.is_set()
