"""The hub's JSON API: every site's state, one site's queues/counters/devices, its events.

Routes are declared once in ``ROUTES`` (with their query parameters), which also produces the
OpenAPI document. Errors are ``{"error": {code, message, message_ja}}``, never a bare 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from edge import __version__
from hub.auth.access import Level
from hub.ingest import Ingest
from hub.settings import HubSettings
from hub.store import HubStore
from hub.web.views import ConfigCache, all_sites, one_site, public_envelope

_LOGGER = logging.getLogger(__name__)

STORE: web.AppKey[HubStore] = web.AppKey("store", HubStore)
INGEST: web.AppKey[Ingest | None] = web.AppKey("ingest", object)  # type: ignore[arg-type]
CONFIGS: web.AppKey[ConfigCache] = web.AppKey("configs", ConfigCache)
SETTINGS: web.AppKey[HubSettings] = web.AppKey("settings", HubSettings)
# (method, resource pattern) -> declared access level; the access middleware (hub.auth.guard)
# enforces it and refuses, at startup and per request, any route missing from it
ACCESS_TABLE: web.AppKey[dict[tuple[str, str], Level]] = web.AppKey("access_table", dict)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
MAX_EVENTS = 1000


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, message_ja: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.message_ja = status, code, message, message_ja


def json_response(data: Any, status: int = 200) -> web.Response:
    return web.Response(text=json.dumps(data, ensure_ascii=False), status=status,
                        content_type="application/json")


def error_response(status: int, code: str, message: str, message_ja: str) -> web.Response:
    return json_response(
        {"error": {"code": code, "message": message, "message_ja": message_ja}}, status=status)


_HTTP_ERRORS = {
    404: ("not_found", "ページまたはAPIが見つかりません"),
    405: ("method_not_allowed", "このメソッドは使えません"),
    413: ("too_large", "リクエストが大きすぎます"),
}


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.message_ja)
    except (SQLAlchemyError, OSError):
        _LOGGER.exception("database failure on %s %s", request.method, _loggable(request))
        return error_response(503, "storage_unavailable", "The hub database is not reachable",
                              "ハブのデータベースに接続できません")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, ja = _HTTP_ERRORS.get(exc.status, ("http_error", "リクエストを処理できません"))
        response = error_response(exc.status, code, exc.reason, ja)
        if "Allow" in exc.headers:
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        _LOGGER.exception("unhandled error on %s %s", request.method, _loggable(request))
        return error_response(500, "internal", "Internal error", "内部エラーです")


def _loggable(request: web.Request) -> str:
    """The route's pattern rather than the path: a ticket's path holds its token (a
    capability), which must never reach a log."""
    info = request.match_info.route.resource
    return info.canonical if info is not None else "(no route)"


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


@dataclass(frozen=True)
class Param:
    name: str
    description: str
    minimum: int
    maximum: int
    default: int


@dataclass(frozen=True)
class Route:
    method: str
    path: str
    summary: str
    handler: Handler
    access: Level  # no default: every route says who may use it (hub.auth.access)
    query: tuple[Param, ...] = ()
    content_type: str = "application/json"


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/health", "Liveness, schema revision and ingest counters", get_health,
          access="public"),
    Route("GET", "/api/sites", "Every site: online, last seq, lag, outbox, config versions, "
          "device health", get_sites, access="staff"),
    Route("GET", "/api/sites/{site}", "One site with its queues, counters and devices",
          get_site, access="staff"),
    Route("GET", "/api/sites/{site}/events", "A site's stored events in seq order (ticket "
          "tokens removed)", get_events, access="ward_staff", query=(
              Param("after", "only events with a greater seq", 0, 2**62, 0),
              Param("limit", "at most this many events", 1, MAX_EVENTS, 100))),
)


def openapi(extra: tuple[Route, ...] = ()) -> dict[str, Any]:
    """OpenAPI 3.1 from the route table (``extra``: HTML pages declared elsewhere)."""
    error = {"description": "refused or unavailable",
             "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}}
    paths: dict[str, dict[str, Any]] = {}
    for route in (*ROUTES, *extra):
        params: list[dict[str, Any]] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in _path_params(route.path)]
        params += [{"name": q.name, "in": "query", "required": False,
                    "description": q.description,
                    "schema": {"type": "integer", "minimum": q.minimum, "maximum": q.maximum,
                               "default": q.default}} for q in route.query]
        op: dict[str, Any] = {
            "summary": route.summary,
            "operationId": route.method.lower() + route.path.replace("/", "_")
            .replace("{", "").replace("}", ""),
            "responses": {"200": {"description": "ok",
                                  "content": {route.content_type: {"schema": {}}}},
                          "4XX": error, "5XX": error},
        }
        if params:
            op["parameters"] = params
        op["x-access"] = route.access
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "madoguchi hub API", "version": __version__},
        "paths": paths,
        "components": {"schemas": {"Error": {
            "type": "object", "required": ["error"],
            "properties": {"error": {"type": "object", "required": ["code", "message"],
                                     "properties": {"code": {"type": "string"},
                                                    "message": {"type": "string"},
                                                    "message_ja": {"type": "string"}}}},
        }}},
    }


def _path_params(path: str) -> list[str]:
    return [part[1:-1] for part in path.split("/") if part.startswith("{")]


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
