"""Resident-facing pages (W1-W3, W8, ticket page). ``module()`` declares them to the hub app.

Routes in ``pages``, live state through the kit's ``LiveSites`` (``feed``), texts in
``hub/web/i18n/{ja,en,zh,ko}.json``, templates and static files in ``hub/web/templates`` and
``hub/web/static`` (the base template's folder: these pages came first). See README.md.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from hub.kit.module import Module
from hub.kit.runtime import Runtime
from hub.web.api import declare
from hub.web.residents.access import ACCESS, AccessCounter
from hub.web.residents.feed import LiveFeed
from hub.web.residents.pages import FEED, GUARD, QUIET, ROUTES
from hub.web.residents.quietcache import QuietHours
from hub.web.residents.tickets import Guard

WEB = Path(__file__).resolve().parent.parent
STATIC = WEB / "static"

__all__ = ["ACCESS", "FEED", "GUARD", "QUIET", "ROUTES", "module"]


def setup(app: web.Application, rt: Runtime) -> None:
    """Static files and the live feed; without live sites (a web-only process) the pages
    answer 503 with a bilingual message."""
    app[FEED] = LiveFeed(rt.live, main=rt.settings.main_site) if rt.live is not None else None
    app[ACCESS] = AccessCounter(rt.store)
    app[GUARD] = Guard()
    app[QUIET] = QuietHours(rt.store, rt.live)
    app.router.add_static("/static/", STATIC)
    declare(app, "GET", "/static", "public")

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        feed = app[FEED]
        if feed is not None:
            await feed.start()
        app[ACCESS].start()
        app[QUIET].start()
        yield
        if feed is not None:
            await feed.stop()
        await app[QUIET].stop()
        await app[ACCESS].stop()

    async def close_streams(app: web.Application) -> None:
        feed = app[FEED]
        if feed is not None:
            feed.status.close()
            feed.tickets.close()

    app.cleanup_ctx.append(lifetime)
    app.on_shutdown.append(close_streams)


def module() -> Module:
    """"/" is the residents' status page."""
    return Module("residents", ROUTES, templates=WEB / "templates", setup=setup)
