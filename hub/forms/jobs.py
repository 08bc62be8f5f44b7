"""The module's background work, started in the process that runs the hub's jobs.

Two loops for the app's lifetime (``hub.kit.tasks.run_for_lifetime``): webhook deliveries every
few seconds (``hub.forms.deliveries``: the outbox claimed with a lease, so several hub
processes may run it), and every hour the reminders of overdue submissions
(``hub.forms.staff_overdue``), retention (``hub.forms.retention``: the warning 30 days
before, then the purge) and the purge of residents' saved details unused for a year
(``hub.forms.profiles``). A failing round is logged (codes only) and the loop goes on: one bad
row or a database that is briefly away must not stop deliveries or deletions for good.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

from aiohttp import web

from hub.forms import profiles, retention, staff_overdue
from hub.forms.context import Forms
from hub.forms.deliveries import SqlDeliveries, deliver_round, sender_for
from hub.kit.tasks import run_for_lifetime

_LOGGER = logging.getLogger(__name__)
DELIVERY_EVERY_S = 5.0
RETENTION_EVERY_S = 3600.0


async def _every(seconds: float, work: Callable[[], Awaitable[object]], name: str) -> None:
    while True:
        try:
            await work()
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            _LOGGER.warning("forms %s round failed: %s", name, type(exc).__name__)
        await asyncio.sleep(seconds)


async def deliveries_loop(ctx: Forms, every_s: float = DELIVERY_EVERY_S) -> None:
    repo = SqlDeliveries(ctx)
    sender = sender_for(ctx, repo)
    try:
        await _every(every_s, lambda: deliver_round(ctx, repo, sender), "webhook")
    finally:
        await sender.close()


async def retention_round(ctx: Forms) -> None:
    """The hourly work: overdue reminders, the retention warning, the purge, then saved
    details unused for a year."""
    await staff_overdue.remind(ctx)
    await retention.warn(ctx)
    while True:  # in batches, so a long backlog never holds one huge transaction
        done = await retention.purge(ctx)
        if sum(done.submissions.values()) < retention.BATCH and done.drafts < retention.BATCH:
            break
    await profiles.purge_profiles(ctx, ctx.clock())


async def retention_loop(ctx: Forms, every_s: float = RETENTION_EVERY_S) -> None:
    await _every(every_s, lambda: retention_round(ctx), "retention")


def start_jobs(app: web.Application, ctx: Forms) -> None:
    """Start the module's loops for the app's lifetime."""
    run_for_lifetime(app, lambda: deliveries_loop(ctx), "forms-webhooks")
    run_for_lifetime(app, lambda: retention_loop(ctx), "forms-retention")
