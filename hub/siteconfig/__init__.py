"""Site settings editor (S4): staff edit, check, preview, publish and roll back a site's
configuration in the admin web. See README.md.

``module()`` imports the routes when the app is built (they need ``hub.web``, which imports
the kit that lists the modules).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.kit.module import Module

__all__ = ["module"]


def module() -> Module:
    """``/admin/settings`` (ward staff and administrators, scoped to their sites)."""
    from hub.kit.module import Module
    from hub.siteconfig.routes import ROUTES, TEMPLATES, settings_time

    return Module("siteconfig", ROUTES, templates=TEMPLATES,
                  filters={"settings_time": settings_time})
