"""Online forms and applications (F1–F7): staff build forms without code, residents apply from
their phones, submissions reach staff and business systems with personal data sealed.
See README.md.

Only the tables are imported here (the migration ``v0011`` imports them for the one metadata);
``module()`` imports the pages when the app is built. The pure parts (form model, validation,
conditions, Japanese field rules) import nothing of aiohttp; the engines (attachments,
webhooks, payments, OpenID Connect) are storage-agnostic and tested against real daemons.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.forms import tables

if TYPE_CHECKING:
    from aiohttp import web

    from hub.kit.module import Module
    from hub.kit.runtime import Runtime

__all__ = ["module", "tables"]

def setup(app: web.Application, rt: Runtime) -> None:
    """The module's one object (``FORMS``) and, in the process that runs background work, its
    loops (``hub.forms.jobs``: webhook deliveries, reminders of overdue submissions,
    retention)."""
    from hub.forms.context import FORMS, Forms, FormSettings, default_files_dir
    from hub.forms.jobs import start_jobs
    from hub.kit.mail import mailer_for

    settings = FormSettings.from_env(default_dir=default_files_dir(rt.store))
    ctx = Forms.build(rt.store, rt.settings, settings, mailer_for(app, rt.settings))
    app[FORMS] = ctx
    if rt.live is not None:
        start_jobs(app, ctx)


def module() -> Module:
    """``/admin/forms…`` (form staff of the form's department, administrators): build, publish
    and follow forms and their submissions; ``/f/…``: the residents' pages (public; sign-in per
    form); ``/api/forms/…``: the JSON API for business systems."""
    from hub.forms import api, builder, resident, resident_check, resident_pay, staff, staff_pay
    from hub.forms.pages import TEMPLATES
    from hub.kit.module import Module

    return Module("forms", (*builder.ROUTES, *staff.ROUTES, *staff_pay.ROUTES, *resident.ROUTES,
                   *resident_check.ROUTES, *resident_pay.ROUTES, *api.ROUTES),
                  templates=TEMPLATES, setup=setup)
