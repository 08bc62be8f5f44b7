"""Staff accounts, sign-in with TOTP, roles per site and the access middleware. See README.md.

The module declares its routes in ``routes.ROUTES`` and is wired by ``hub/web/app.py`` through
``setup_auth``. Kept import-light (no routes imported here) because ``hub.auth.tables`` must be
importable from the store without pulling in the web layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

NAME = "auth"


def setup_auth(app: web.Application) -> None:
    """Routes and the startup check that every route declares an access level."""
    from hub.auth import guard
    from hub.auth.routes import ROUTES
    from hub.web.api import add_routes

    add_routes(app, ROUTES)
    guard.install(app)
