"""The hub's aiohttp application: every module registered the same way on the kit.

``modules()`` lists them (the JSON API, the staff overview, notices, web tickets, the resident
pages, staff sign-in, the audit trail); ``create_app`` builds the one ``Runtime`` (store,
settings, live sites, the one Jinja environment over every module's templates), registers each
module's routes with their access level and runs its setup, installs the security headers and
serves one OpenAPI document of all routes.
"""

from __future__ import annotations

from aiohttp import web

from hub.ingest import Ingest
from hub.kit import headers
from hub.kit.live import LiveSites
from hub.kit.module import Module, environment, register
from hub.kit.runtime import RUNTIME, Runtime
from hub.settings import HubSettings
from hub.store import HubStore
from hub.web.api import (
    CONFIGS,
    INGEST,
    ROUTES,
    SETTINGS,
    STORE,
    declare,
    errors_as_json,
    json_response,
    openapi,
)
from hub.web.views import ConfigCache

MAX_BODY = 64 * 1024


def modules() -> tuple[Module, ...]:
    """Every hub module, in registration order. Imported here, not at the top: the modules'
    web parts import ``hub.web.api``, which is imported with this package."""
    from hub import (
        audit,
        auth,
        fleet,
        forms,
        notices,
        notify,
        reservations,
        siteconfig,
        stats,
        webticket,
    )
    from hub.web import residents, staff

    return (Module("api", ROUTES),  # /api/health, /api/sites, /api/sites/{site}[/events]
            staff.module(),  # /staff/sites
            notify.module(),  # POST /t/{token}/notice (W5)
            webticket.module(),  # /w/{site}/{service}, /api/web-tickets (W4)
            residents.module(),  # "/" is the residents' status page, /t/{token}
            auth.module(),  # /auth/*, /admin/staff; refuses to start if a route declares no access
            audit.module(),  # /admin/audit, /admin/audit.csv, /admin/audit/verify (A3)
            siteconfig.module(),  # /admin/settings: edit, check, publish, roll back (S4)
            fleet.module(),  # /admin/fleet, /metrics, the alert watcher (O2)
            reservations.module(),  # /r: residents book, change, cancel (R1-R10)
            stats.module(),  # /admin/stats: reports, charts, CSV export, column sets (S1-S3)
            notices.module(),  # /admin/notices (staff), /n/... (residents' portal) (N1-N8)
            forms.module())  # /admin/forms (staff), /f/... (residents), /api/forms (F1-F7)


def create_app(store: HubStore, ingest: Ingest | None = None,
               settings: HubSettings | None = None) -> web.Application:
    """``ingest``: the in-process consumer, if this process runs one (adds its counters to
    ``/api/health``; resident pages need its live site states); web-only processes pass None."""
    from hub.auth.guard import enforce_access  # here: hub.auth's web parts import hub.web.api

    mods = modules()
    rt = Runtime(store=store, settings=settings or HubSettings.from_env(),
                 jinja=environment(mods), ingest=ingest,
                 live=LiveSites(ingest) if ingest is not None else None)
    app = web.Application(middlewares=[errors_as_json, enforce_access], client_max_size=MAX_BODY)
    app[RUNTIME] = rt
    app[STORE] = store  # the older keys, same objects: handlers not yet moved to RUNTIME
    app[INGEST] = ingest
    app[CONFIGS] = ConfigCache()
    app[SETTINGS] = rt.settings
    headers.install(app)
    register(app, mods, rt)
    spec = openapi(tuple(r for m in mods if m.name != "api" for r in m.routes))

    async def get_openapi(_request: web.Request) -> web.Response:
        return json_response(spec)

    app.router.add_get("/api/openapi.json", get_openapi)
    declare(app, "GET", "/api/openapi.json", "public")
    return app
