"""The hub's JSON API: every site's state, one site's queues/counters/devices, its events.

Routes are declared once in ``ROUTES`` (with their access level and query parameters), which
also produces the OpenAPI document. Errors are ``{"error": {code, message, message_ja}}``, never
a bare 500. The errors, route declarations and the document come from the HTTP kit the edge
uses too (``edge.httpkit``); its names stay importable from here for the hub's modules.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy import text
from sqlalchemy.exc import SQLAlchemyError

from edge import __version__
from edge.httpkit import (
    BOOL,
    ERROR_SCHEMA,
    INT,
    OPT_INT,
    OPT_STR,
    STR,
    ApiError,
    Handler,
    Param,
    RouteSpec,
    array,
    error_response,
    json_response,
    obj,
)
from edge.httpkit import errors_as_json as _errors_as_json
from edge.httpkit import openapi as _openapi
from hub.auth.access import Level
from hub.ingest import Ingest
from hub.settings import HubSettings
from hub.store import HubStore
from hub.web.views import DEVICE_STATES, ConfigCache, all_sites, one_site, public_envelope

_LOGGER = logging.getLogger(__name__)

# the kit's names, importable from here as the hub's modules always have
__all__ = [
    "ACCESS_TABLE", "BOOL", "CONFIGS", "ERROR_SCHEMA", "INGEST", "INT", "NAMES", "OPT_INT",
    "OPT_NAMES", "OPT_STR", "ROUTES", "SETTINGS", "STORE", "STR", "ApiError", "Handler", "Param",
    "Route", "add_routes", "array", "declare", "error_response", "errors_as_json",
    "json_response", "lang_param", "obj", "openapi",
]

STORE: web.AppKey[HubStore] = web.AppKey("store", HubStore)
INGEST: web.AppKey[Ingest | None] = web.AppKey("ingest", object)  # type: ignore[arg-type]
CONFIGS: web.AppKey[ConfigCache] = web.AppKey("configs", ConfigCache)
SETTINGS: web.AppKey[HubSettings] = web.AppKey("settings", HubSettings)
# (method, resource pattern) -> declared access level; the access middleware (hub.auth.guard)
# enforces it and refuses, at startup and per request, any route missing from it
ACCESS_TABLE: web.AppKey[dict[tuple[str, str], Level]] = web.AppKey("access_table", dict)

MAX_EVENTS = 1000

# every failure as ``{"error": {code, message, message_ja}}``, never a bare 500; posted forms
# are decoded first (400 ``bad_form``); a database that cannot be reached is a 503
errors_as_json = _errors_as_json(
    internal=ApiError(500, "internal", "Internal error", "内部エラーです"),
    failures={(SQLAlchemyError, OSError): ApiError(
        503, "storage_unavailable", "The hub database is not reachable",
        "ハブのデータベースに接続できません")},
    forms=True, logger=_LOGGER)


def _int_param(request: web.Request, name: str, default: int, low: int, high: int) -> int:
    raw = request.query.get(name)
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        value = low - 1
    if not low <= value <= high:
        raise ApiError(400, "bad_parameter", f"{name} must be an integer from {low} to {high}",
                       f"{name} は {low} から {high} の整数で指定してください")
    return value


def _unknown_site(site: str) -> ApiError:
    return ApiError(404, "unknown_site", f"The hub knows no site {site!r}",
                    f"拠点 {site!r} はハブに登録されていません")


async def get_health(request: web.Request) -> web.Response:
    store = request.app[STORE]
    ingest = request.app[INGEST]
    return json_response({"ok": True, "version": __version__, "schema": store.revision,
                          "ingest": None if ingest is None else ingest.stats_view()})


READY_TIMEOUT_S = 2.0


async def get_ready(request: web.Request) -> web.Response:
    """Readiness (may this process take traffic): the database answers within 2 s. The broker
    link is reported but does not decide: pages and staff work read the database, and a broker
    outage must not take every hub process out of a load balancer at once."""
    store = request.app[STORE]
    ingest = request.app[INGEST]
    try:
        async with asyncio.timeout(READY_TIMEOUT_S), store.read() as tx:
            await tx.conn.execute(text("SELECT 1"))
        database = "ok"
    except TimeoutError:
        database = "timeout"
    except (SQLAlchemyError, OSError):
        database = "unreachable"
    broker = None if ingest is None else ("ok" if ingest.stats_view()["connected"]
                                          else "disconnected")
    ready = database == "ok"
    return json_response({"ready": ready, "checks": {"database": database, "broker": broker}},
                         status=200 if ready else 503)


async def get_sites(request: web.Request) -> web.Response:
    return json_response({"sites": await all_sites(request.app[STORE], request.app[CONFIGS])})


async def get_site(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    view = await one_site(request.app[STORE], request.app[CONFIGS], site)
    if view is None:
        raise _unknown_site(site)
    return json_response(view)


async def get_events(request: web.Request) -> web.Response:
    site = request.match_info["site"]
    after = _int_param(request, "after", 0, 0, 2**62)
    limit = _int_param(request, "limit", 100, 1, MAX_EVENTS)
    store = request.app[STORE]
    async with store.read() as tx:
        row = await tx.site(site)
        if row is None:
            raise _unknown_site(site)
        envs = await tx.events(site, after, limit=limit)
    return json_response({
        "site": site, "last_seq": row["last_seq_contiguous"],
        "events": [public_envelope(e.to_dict()) for e in envs],
        "next_after": envs[-1].seq if envs else after,
    })


def lang_param(langs: tuple[str, ...]) -> Param:
    """``?lang=``: the page's language (anything else: the browser's, else Japanese)."""
    return Param("lang", "language of the page; others fall back to Accept-Language, then "
                 "Japanese", schema={"enum": list(langs)})


@dataclass(frozen=True)
class Route(RouteSpec):
    """A hub route: its handler, and (from ``RouteSpec``) who may use it and what the OpenAPI
    document says it takes and answers (``body``: media type -> JSON schema, or a pydantic
    model read with ``edge.httpkit.read_json``)."""

    handler: Handler
    # no default: every route says who may use it (hub.auth.access)
    access: Level = field(kw_only=True)


# JSON schema pieces for the hub's response schemas (the generic ones come from the kit)
NAMES: dict[str, Any] = {"type": "object", "additionalProperties": STR,
                         "description": "a name per language (ja, en, zh, ko)"}
OPT_NAMES: dict[str, Any] = {"anyOf": [NAMES, {"type": "null"}]}


SITE_SUMMARY = obj({
    "site": STR, "name": OPT_NAMES, "online": BOOL, "last_seq": INT, "last_seq_received": INT,
    "last_event_at": OPT_STR, "lag_s": OPT_INT, "outbox": OPT_INT, "edge_last_seq": OPT_INT,
    "status_at": OPT_STR, "software": OPT_STR,
    "config": obj({"desired": OPT_INT, "applied": OPT_INT, "in_sync": BOOL}),
    "devices": obj({"total": INT, **{s: INT for s in DEVICE_STATES},
                    "worst": {"enum": [*DEVICE_STATES, None]},
                    "problems": array(obj({"device": STR, "kind": STR,
                                           "state": {"enum": list(DEVICE_STATES)},
                                           "reason": OPT_STR}))}),
    "projection": STR, "updated_at": OPT_STR,
})
ONE_SITE = {**SITE_SUMMARY, "required": [*SITE_SUMMARY["required"], "queues", "counters",
                                         "devices_list"],
            "properties": {**SITE_SUMMARY["properties"],
                           "queues": array(obj({"service": STR, "name": OPT_NAMES,
                                                "waiting": INT, "estimate": {
                                                    "anyOf": [obj({"low_s": INT,
                                                                   "high_s": OPT_INT}),
                                                              {"type": "null"}]}})),
                           "counters": array(obj({"counter": STR, "open": BOOL,
                                                  "name": OPT_NAMES})),
                           "devices_list": array(obj({"device": STR, "kind": STR,
                                                      "state": STR}))}}
EVENTS = obj({"site": STR, "last_seq": INT, "next_after": INT,
              "events": array(obj({"v": INT, "site": STR, "seq": INT, "id": STR, "at": STR,
                                   "day": STR, "type": STR, "data": {"type": "object"}}))})
HEALTH = obj({"ok": BOOL, "version": STR, "schema": OPT_STR,
              "ingest": {"anyOf": [{"type": "object"}, {"type": "null"}]}})


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/health", "Liveness, schema revision and ingest counters", get_health,
          access="public", response=HEALTH),
    Route("GET", "/api/ready", "Readiness: 200 when the database answers, else 503 with "
          "the failing check (liveness is /api/health)", get_ready, access="public",
          response=obj({"ready": BOOL, "checks": {"type": "object"}})),
    Route("GET", "/api/sites", "Every site: online, last seq, lag, outbox, config versions, "
          "device health", get_sites, access="staff",
          response=obj({"sites": array(SITE_SUMMARY)})),
    Route("GET", "/api/sites/{site}", "One site with its queues, counters and devices",
          get_site, access="staff", response=ONE_SITE),
    Route("GET", "/api/sites/{site}/events", "A site's stored events in seq order (ticket "
          "tokens removed)", get_events, access="ward_staff", response=EVENTS, query=(
              Param("after", "only events with a greater seq", 0, 2**62, 0),
              Param("limit", "at most this many events", 1, MAX_EVENTS, 100))),
)


def openapi(extra: tuple[Route, ...] = ()) -> dict[str, Any]:
    """OpenAPI 3.1 from the route table (``extra``: the other modules' routes and pages)."""
    return _openapi((*ROUTES, *extra), title="madoguchi hub API", version=__version__)


def add_routes(app: web.Application, routes: tuple[Route, ...] = ROUTES) -> None:
    for route in routes:
        app.router.add_route(route.method, route.path, route.handler)
        declare(app, route.method, route.path, route.access)


def declare(app: web.Application, method: str, path: str, access: Level) -> None:
    """Record a route's access level (routes added with ``app.router`` directly must call this,
    or every request to them is refused and the hub does not start)."""
    if ACCESS_TABLE not in app:
        app[ACCESS_TABLE] = {}
    app[ACCESS_TABLE][(method.upper(), path)] = access
