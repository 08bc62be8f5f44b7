"""The edge's aiohttp application: API, websocket, OpenAPI and the kiosk-ui pages."""

from __future__ import annotations

import logging
from pathlib import Path

from aiohttp import web

from edge.paths import data_dir
from edge.store.writer import Writer
from edge.sync.reservations import ReservationBook
from edge.sync.staff import StaffBook
from edge.web.access import check_declared, declare
from edge.web.api import (
    RESERVATIONS,
    SESSIONS,
    STAFF,
    WRITER,
    add_routes,
    errors_as_json,
    json_response,
)
from edge.web.auth import Sessions
from edge.web.discovery import get_discovery
from edge.web.live import LIVE, LiveHub, live_ctx
from edge.web.metrics import add_metrics
from edge.web.openapi import openapi
from edge.web.ui import add_ui_routes

_LOGGER = logging.getLogger(__name__)
MAX_BODY = 64 * 1024  # commands are tiny; anything bigger is refused with 413


def create_app(writer: Writer) -> web.Application:
    app = web.Application(middlewares=[errors_as_json], client_max_size=MAX_BODY)
    app[WRITER] = writer
    app[SESSIONS] = Sessions()
    app[STAFF] = writer.read(lambda _s: StaffBook.load(writer.store))
    app[RESERVATIONS] = writer.read(lambda _s: ReservationBook.load(writer.store))
    hub = LiveHub(writer)
    app[LIVE] = hub
    hub.extras["devices"] = list
    writer.subscribe(hub.on_commit)
    add_routes(app)
    spec = openapi()

    async def get_openapi(_request: web.Request) -> web.Response:
        return json_response(spec)

    async def index(_request: web.Request) -> web.FileResponse:
        assert ui is not None
        return web.FileResponse(ui / "index.html")

    async def to_ui(_request: web.Request) -> web.Response:
        raise web.HTTPFound("/ui/")

    app.router.add_get("/api/openapi.json", get_openapi)
    app.router.add_get("/api/ws", hub.handle)
    app.router.add_get("/api/discovery", get_discovery)
    for path in ("/api/openapi.json", "/api/ws", "/api/discovery", "/api/ui/config", "/",
                 "/ui/", "/ui", "/ui/{filename}"):
        declare(app, "GET", path, "public")  # what every screen loads
    ui: Path | None
    try:
        ui = data_dir("kiosk-ui")
    except FileNotFoundError:
        _LOGGER.warning("kiosk-ui not found; serving the API only")
        ui = None
    else:
        app.router.add_get("/", index)
        # before the static route, which answers 403 for its own folder (no directory listing)
        app.router.add_get("/ui/", index)
        app.router.add_get("/ui", to_ui)
        app.router.add_static("/ui/", ui)
    add_ui_routes(app, ui)
    add_metrics(app)  # GET /metrics (Prometheus; gated: edge/web/metrics.py)
    check_declared(app)
    app.cleanup_ctx.append(live_ctx)

    async def close_screens(_app: web.Application) -> None:
        await hub.close_all()  # screens see the edge go away at once, not after a timeout

    app.on_shutdown.append(close_screens)
    return app
