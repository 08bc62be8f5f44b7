"""Notices when a ticket's turn is near (W5-W7). See README.md.

``module()`` declares the module to ``hub/web/app.py`` (the kit's one shape); it imports the
routes only when called, so ``hub.notify.service`` stays importable without the web layer.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.kit.module import Module


def module() -> Module:
    """``POST /t/{token}/notice`` and its rate limits; the ``Notifier`` itself is started by
    ``hub/app.py`` where this process runs ingest."""
    from hub.kit.module import Module
    from hub.notify.api import notice_routes, setup

    return Module("notify", notice_routes(), setup=setup)
