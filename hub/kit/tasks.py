"""A module's background task for the app's lifetime (nightly pruning, reminders, watchers).

Why one helper: each such task must start with the app, be cancelled at shutdown and awaited so
no pending-task warning or half-done write outlives the app; written once here, modules only say
what runs.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Coroutine
from typing import Any

from aiohttp import web


def run_for_lifetime(app: web.Application, make: Callable[[], Coroutine[Any, Any, None]],
                     name: str) -> None:
    """Start ``make()`` as a task when the app starts; cancel and await it when it stops."""

    async def lifetime(_app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(make(), name=name)
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    app.cleanup_ctx.append(lifetime)
