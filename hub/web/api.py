"""The hub's JSON API: every site's state, one site's queues/counters/devices, its events.

Routes are declared once in ``ROUTES`` (with their query parameters), which also produces the
OpenAPI document. Errors are ``{"error": {code, message, message_ja}}``, never a bare 500.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web
from sqlalchemy.exc import SQLAlchemyError

from edge import __version__
from hub.auth.access import Level
from hub.ingest import Ingest
from hub.settings import HubSettings
from hub.store import HubStore
from hub.web.views import DEVICE_STATES, ConfigCache, all_sites, one_site, public_envelope

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


FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    try:
        if request.method == "POST" and request.content_type in FORMS and \
                request.match_info.http_exception is None:
            await decode_form(request)
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


async def decode_form(request: web.Request) -> None:
    """Decode a posted form once, before any middleware or handler reads it (aiohttp keeps
    it for ``request.post()``), so none of them meets an undecodable one: an unknown charset,
    bytes that are not UTF-8 or a multipart body without its boundary are the client's error
    (400 ``bad_form``), never a 500 from whichever ``request.post()`` came first."""
    try:
        await request.post()
    except (ValueError, LookupError):
        raise ApiError(400, "bad_form", "The form could not be decoded (send UTF-8 form data)",
                       "フォームの内容を読み取れません（UTF-8 で送ってください）") from None


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
    """A query parameter: an integer in [minimum, maximum], or ``schema`` for any other."""

    name: str
    description: str
    minimum: int = 0
    maximum: int = 0
    default: int = 0
    schema: Mapping[str, Any] | None = None

    def json_schema(self) -> dict[str, Any]:
        if self.schema is not None:
            return dict(self.schema)
        return {"type": "integer", "minimum": self.minimum, "maximum": self.maximum,
                "default": self.default}


def lang_param(langs: tuple[str, ...]) -> Param:
    """``?lang=``: the page's language (anything else: the browser's, else Japanese)."""
    return Param("lang", "language of the page; others fall back to Accept-Language, then "
                 "Japanese", schema={"enum": list(langs)})


@dataclass(frozen=True)
class Route:
    """One route: who may use it, and what the OpenAPI document says it takes and answers.

    ``body``: the request body, media type -> JSON schema (none: the route reads no body).
    ``response``: JSON schema of the success body (``status``, in ``content_type``).
    ``also``: other answers the handler gives on purpose, status -> description (a 303 after
    a form, a 304 for a matching ETag); errors (4XX/5XX) and, for pages, redirects (3XX) are
    listed for every route by ``openapi``.
    """

    method: str
    path: str
    summary: str
    handler: Handler
    access: Level  # no default: every route says who may use it (hub.auth.access)
    query: tuple[Param, ...] = ()
    content_type: str = "application/json"
    body: Mapping[str, Mapping[str, Any]] | None = None
    response: Mapping[str, Any] | None = None
    status: int = 200
    also: Mapping[int, str] = field(default_factory=dict)


# JSON schema pieces for the response schemas below and in the modules' route tables
STR: dict[str, Any] = {"type": "string"}
INT: dict[str, Any] = {"type": "integer"}
BOOL: dict[str, Any] = {"type": "boolean"}
OPT_STR: dict[str, Any] = {"type": ["string", "null"]}
OPT_INT: dict[str, Any] = {"type": ["integer", "null"]}
NAMES: dict[str, Any] = {"type": "object", "additionalProperties": STR,
                         "description": "a name per language (ja, en, zh, ko)"}
OPT_NAMES: dict[str, Any] = {"anyOf": [NAMES, {"type": "null"}]}


def obj(required: Mapping[str, Any], optional: Mapping[str, Any] | None = None
        ) -> dict[str, Any]:
    """An object schema with these required (and optional) properties; others are allowed
    (a client must ignore fields it does not know)."""
    return {"type": "object", "required": list(required),
            "properties": {**required, **(optional or {})}}


def array(items: Mapping[str, Any]) -> dict[str, Any]:
    return {"type": "array", "items": dict(items)}


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

ERROR_SCHEMA: dict[str, Any] = {
    "type": "object", "required": ["error"],
    "properties": {"error": {"type": "object", "required": ["code", "message"],
                             "properties": {"code": STR, "message": STR, "message_ja": STR}}},
}


def openapi(extra: tuple[Route, ...] = ()) -> dict[str, Any]:
    """OpenAPI 3.1 from the route table (``extra``: the other modules' routes and pages).

    Errors are ``Error`` JSON; a page (``text/html``) may answer them as a page instead, and may
    redirect (3XX: to the sign-in page without a session, or where a form leads).
    """
    json_error = {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}}
    paths: dict[str, dict[str, Any]] = {}
    for route in (*ROUTES, *extra):
        page = route.content_type == "text/html"
        error = {"description": "refused or unavailable",
                 "content": {**json_error, **({"text/html": {"schema": STR}} if page else {})}}
        params: list[dict[str, Any]] = [
            {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
            for p in _path_params(route.path)]
        params += [{"name": q.name, "in": "query", "required": False,
                    "description": q.description, "schema": q.json_schema()}
                   for q in route.query]
        responses: dict[str, Any] = {str(route.status): {
            "description": "ok",
            "content": {route.content_type: {"schema": dict(route.response or {})}}}}
        responses.update({str(code): {"description": text} for code, text in route.also.items()})
        if page:
            responses["3XX"] = {"description": "redirect: to the sign-in page without a "
                                               "session, or where a form leads"}
        responses.update({"4XX": error, "5XX": error})
        op: dict[str, Any] = {
            "summary": route.summary,
            "operationId": route.method.lower() + route.path.replace("/", "_")
            .replace("{", "").replace("}", ""),
            "responses": responses,
        }
        if params:
            op["parameters"] = params
        if route.body:
            op["requestBody"] = {"required": True, "content": {
                media: {"schema": dict(schema)} for media, schema in route.body.items()}}
        op["x-access"] = route.access
        paths.setdefault(route.path, {})[route.method.lower()] = op
    return {
        "openapi": "3.1.0",
        "info": {"title": "madoguchi hub API", "version": __version__},
        "paths": paths,
        "components": {"schemas": {"Error": ERROR_SCHEMA}},
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
