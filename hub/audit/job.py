"""The daily deletion of audit rows the staff-set retention period no longer covers (A3).

Why at 03:00 Japan time: pruning first verifies the whole chain under the audit lock (about
4 s per 200,000 rows here), which holds back sign-ins' audit rows meanwhile; at night nobody
waits. Every hub process runs it; the lock makes the second run find nothing to delete. A
broken chain is never pruned (the evidence stays) and is logged as an error every day.
"""

from __future__ import annotations

import asyncio
import logging
from datetime import datetime, time, timedelta
from zoneinfo import ZoneInfo

from aiohttp import web

from hub.audit.service import AuditError, prune_expired
from hub.kit.runtime import Runtime
from hub.kit.tasks import run_for_lifetime
from hub.store.store import now_utc

_LOGGER = logging.getLogger(__name__)
JST = ZoneInfo("Asia/Tokyo")
RUN_AT = time(3, 0)


def next_run(now: datetime) -> datetime:
    """The next 03:00 Japan time strictly after ``now`` (aware), as UTC."""
    local = now.astimezone(JST)
    at = datetime.combine(local.date(), RUN_AT, tzinfo=JST)
    if at <= local:
        at = datetime.combine(local.date() + timedelta(days=1), RUN_AT, tzinfo=JST)
    return at.astimezone(now.tzinfo)


async def run_once(rt: Runtime, now: datetime | None = None) -> int:
    """One pruning pass; never raises (a failure is logged and tried again the next night)."""
    try:
        deleted = await prune_expired(rt.store, rt.settings, now=now)
    except AuditError as exc:
        _LOGGER.error("audit pruning skipped: %s", exc)
        return 0
    except Exception:
        _LOGGER.exception("audit pruning failed")
        return 0
    if deleted:
        _LOGGER.info("audit pruning: %d rows past the retention period deleted", deleted)
    return deleted


def setup(app: web.Application, rt: Runtime) -> None:
    """Run the pass every night for the app's lifetime."""

    async def nightly() -> None:
        while True:
            now = now_utc()
            await asyncio.sleep(max(1.0, (next_run(now) - now).total_seconds()))
            await run_once(rt)

    run_for_lifetime(app, nightly, "hub-audit-pruning")
