"""Staff accounts, sign-in with TOTP, roles per site and the access middleware. See README.md.

The module declares its routes in ``routes.ROUTES`` and itself to ``hub/web/app.py`` through
``module()`` (the kit's one shape). Kept import-light (no routes imported here) because
``hub.auth.tables`` must be importable from the store without pulling in the web layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from aiohttp import web

    from hub.kit.module import Module
    from hub.kit.runtime import Runtime

NAME = "auth"


def _setup(app: web.Application, _runtime: Runtime) -> None:
    """The startup check that every route (of every module) declares an access level."""
    from hub.auth import guard

    guard.install(app)


def module() -> Module:
    """``/auth/*``, ``/admin/staff``; the access middleware itself is in ``create_app``'s list."""
    from hub.auth.routes import ROUTES
    from hub.auth.texts import TEMPLATES
    from hub.kit.module import Module

    return Module(NAME, ROUTES, templates=TEMPLATES, setup=_setup)
