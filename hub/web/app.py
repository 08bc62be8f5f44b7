"""The hub's aiohttp application: JSON API, OpenAPI, staff pages."""

from __future__ import annotations

from aiohttp import web

from hub.ingest import Ingest
from hub.settings import HubSettings
from hub.store import HubStore
from hub.web.api import (
    CONFIGS,
    INGEST,
    SETTINGS,
    STORE,
    add_routes,
    declare,
    errors_as_json,
    json_response,
    openapi,
)
from hub.web.residents import ROUTES as RESIDENT_ROUTES
from hub.web.residents import setup_residents
from hub.web.staff import PAGES
from hub.web.views import ConfigCache

MAX_BODY = 64 * 1024


def create_app(store: HubStore, ingest: Ingest | None = None,
               settings: HubSettings | None = None) -> web.Application:
    """``ingest``: the in-process consumer, if this process runs one (adds its counters to
    ``/api/health``; resident pages need its live site states); web-only processes pass None."""
    from hub.audit import setup_audit  # here too: its routes import hub.web.api
    from hub.audit.routes import ROUTES as AUDIT_ROUTES
    from hub.auth import setup_auth  # here: hub.auth's web parts import hub.web.api
    from hub.auth.guard import enforce_access
    from hub.auth.routes import ROUTES as AUTH_ROUTES

    app = web.Application(middlewares=[errors_as_json, enforce_access], client_max_size=MAX_BODY)
    app[STORE] = store
    app[INGEST] = ingest
    app[CONFIGS] = ConfigCache()
    app[SETTINGS] = settings or HubSettings.from_env()
    add_routes(app)
    add_routes(app, PAGES)
    from hub.notify.api import add_notice_routes, notice_routes  # here: it imports hub.web.api

    add_notice_routes(app)  # POST /t/{token}/notice (W5)
    from hub.webticket import ROUTES as WEBTICKET_ROUTES
    from hub.webticket import setup_webtickets

    setup_webtickets(app, ingest)  # /w/{site}/{service}, /api/web-tickets (W4)
    setup_residents(app, ingest)  # "/" is the residents' status page
    setup_auth(app)  # /auth/*, /admin/staff; refuses to start if a route declares no access
    setup_audit(app)  # /admin/audit, /admin/audit.csv, /admin/audit/verify (A3)
    spec = openapi((*PAGES, *RESIDENT_ROUTES, *WEBTICKET_ROUTES, *notice_routes(),
                    *AUTH_ROUTES, *AUDIT_ROUTES))

    async def get_openapi(_request: web.Request) -> web.Response:
        return json_response(spec)

    app.router.add_get("/api/openapi.json", get_openapi)
    declare(app, "GET", "/api/openapi.json", "public")
    return app
