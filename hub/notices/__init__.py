"""Online notices (N1–N8): signed PDF notices delivered to residents through a portal.
See README.md.

Only the tables are imported here (the migration ``v0010`` imports them for the one metadata);
``module()`` imports the pages when the app is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.notices import tables

if TYPE_CHECKING:
    from aiohttp import web

    from hub.kit.module import Module
    from hub.kit.runtime import Runtime

__all__ = ["module", "tables"]


def setup(app: web.Application, rt: Runtime) -> None:
    """The module's one object (``NOTICES``) and its background work: reminders, sending left
    unfinished by a crash, and deletion after each notice's retention period."""
    from hub.kit.mail import mailer_for
    from hub.kit.tasks import run_for_lifetime
    from hub.notices.context import NOTICES, Notices, NoticeSettings, default_files_dir
    from hub.notices.retention import purge_loop
    from hub.notices.sending import reminder_loop

    settings = NoticeSettings.from_env(default_dir=default_files_dir(rt.store))
    ctx = Notices.build(rt.store, rt.settings, settings,
                        mailer_for(app, rt.settings))
    app[NOTICES] = ctx
    if rt.live is not None:  # the process that runs the hub's background work
        run_for_lifetime(app, lambda: reminder_loop(ctx), "notice-reminders")
        run_for_lifetime(app, lambda: purge_loop(ctx), "notice-retention")


def module() -> Module:
    """``/admin/notices…`` (notice staff of the notice's department, administrators): prepare,
    sign, send and follow notices; ``/n/…``: the residents' portal (public; a link token, then a
    one-time code or a magic link consumed by a POST)."""
    from hub.kit.module import Module
    from hub.notices import portal, routes

    return Module("notices", (*routes.ROUTES, *portal.routes()), templates=routes.TEMPLATES,
                  setup=setup)
