"""Resident-facing pages (W1-W3, W8, ticket page): ``setup_residents(app, ingest)``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

from aiohttp import web

from hub.ingest import Ingest
from hub.web.api import STORE, add_routes, declare
from hub.web.residents.access import AccessCounter
from hub.web.residents.feed import LiveFeed
from hub.web.residents.pages import ACCESS, FEED, GUARD, ROUTES
from hub.web.residents.tickets import Guard

STATIC = Path(__file__).resolve().parent.parent / "static"

__all__ = ["ACCESS", "FEED", "GUARD", "ROUTES", "setup_residents"]


def setup_residents(app: web.Application, ingest: Ingest | None) -> None:
    """Routes, static files and the live feed; without ``ingest`` (a web-only process) the
    pages answer 503 with a bilingual message."""
    app[FEED] = LiveFeed(ingest) if ingest is not None else None
    app[ACCESS] = AccessCounter(app[STORE])
    app[GUARD] = Guard()
    add_routes(app, ROUTES)
    app.router.add_static("/static/", STATIC)
    declare(app, "GET", "/static", "public")

    async def lifetime(app: web.Application) -> AsyncIterator[None]:
        feed = app[FEED]
        if feed is not None:
            await feed.start()
        app[ACCESS].start()
        yield
        if feed is not None:
            await feed.stop()
        await app[ACCESS].stop()

    async def close_streams(app: web.Application) -> None:
        feed = app[FEED]
        if feed is not None:
            feed.status.close()
            feed.tickets.close()

    app.cleanup_ctx.append(lifetime)
    app.on_shutdown.append(close_streams)
