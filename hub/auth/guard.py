"""The one access middleware: every request is checked against its route's declared level.

Deny by default: a route missing from the access table is refused (403) and, checked at startup,
stops the hub from starting. Public levels pass; staff levels need a finished session whose
roles fit (``hub.auth.access.allows``), at the site the path names if it names one. A browser
asking for a page without a session is sent to the login page; an API caller gets 401 JSON; a
wrong role gets a 403 page or JSON in Japanese and English. Every POST under a session must carry
the session's CSRF token (form field ``csrf`` or header ``X-CSRF-Token``).
"""

from __future__ import annotations

import logging
from urllib.parse import quote

from aiohttp import web

from edge.httpkit.errors import streamed
from hub.auth import service
from hub.auth.access import allows, is_public
from hub.auth.texts import pick_lang, render_error
from hub.web.api import ACCESS_TABLE, SETTINGS, STORE, Handler, error_response
from hub.web.ratelimit import client_ip

_LOGGER = logging.getLogger(__name__)

COOKIE = "madoguchi_staff"
# request[SESSION_KEY]: the Session, on staff routes
SESSION_KEY: web.RequestKey[service.Session] = web.RequestKey("staff_session", service.Session)
LOGIN_PATH = "/auth/login"


def route_key(request: web.Request) -> tuple[str, str] | None:
    """(method, pattern) of the matched route; None for aiohttp's own 404/405 answers."""
    route = request.match_info.route
    resource = route.resource
    if resource is None or request.match_info.http_exception is not None:
        return None
    method = route.method.upper()
    return ("GET" if method == "HEAD" else method), resource.canonical


def wants_html(request: web.Request) -> bool:
    return not request.path.startswith("/api/") and \
        "text/html" in request.headers.get("Accept", "")


def ip_of(request: web.Request) -> str:
    return client_ip(request, request.app[SETTINGS].trust_proxy)[:64]


async def current_session(request: web.Request) -> service.Session | None:
    return await service.session(request.app[STORE], request.app[SETTINGS],
                                 request.cookies.get(COOKIE))


def refuse(request: web.Request, status: int, code: str) -> web.StreamResponse:
    """401/403 as a page (browsers) or JSON (API), never a stack trace."""
    lang = pick_lang(request)
    if status == 401 and wants_html(request):
        raise web.HTTPSeeOther(f"{LOGIN_PATH}?next={quote(request.path_qs, safe='')}")
    if wants_html(request):
        return render_error(request, status, code, lang)
    from hub.auth.texts import TEXTS

    return error_response(status, code, TEXTS["en"]["errors"][code],
                          TEXTS["ja"]["errors"][code])


@web.middleware
async def enforce_access(request: web.Request, handler: Handler) -> web.StreamResponse:
    key = route_key(request)
    if key is None:
        return await handler(request)
    level = request.app[ACCESS_TABLE].get(key)
    if level is None:
        _LOGGER.error("route %s %s declares no access level: refused", *key)
        return refuse(request, 403, "forbidden")
    if is_public(level):
        return await handler(request)
    current = await current_session(request)
    if current is None or current.stage != "ok":
        return refuse(request, 401, "login_required")
    site = request.match_info.get("site")
    if not allows(level, current.grants, site):
        return refuse(request, 403, "forbidden")
    if request.method not in ("GET", "HEAD", "OPTIONS"):
        token = request.headers.get("X-CSRF-Token")
        if token is None and streamed(request):
            # a file upload's form names its token in the action URL, so the body can be
            # streamed by the handler beyond the app's form-size limit (reservation IDs)
            token = request.query["csrf"]
        elif token is None and request.content_type in (
                "application/x-www-form-urlencoded", "multipart/form-data"):
            token = str((await request.post()).get("csrf", "")) or None
        if not service.csrf_ok(current.sid, token):
            return refuse(request, 403, "csrf")
    request[SESSION_KEY] = current
    return await handler(request)


def check_declared(app: web.Application) -> None:
    """Raise at startup if any registered route has no access level (deny by default)."""
    table = app.get(ACCESS_TABLE, {})
    missing = []
    for route in app.router.routes():
        resource = route.resource
        if resource is None:
            continue
        method = "GET" if route.method.upper() == "HEAD" else route.method.upper()
        if (method, resource.canonical) not in table:
            missing.append(f"{route.method} {resource.canonical}")
    if missing:
        raise RuntimeError("routes without an access level (declare one): "
                           + ", ".join(sorted(set(missing))))


async def _startup_check(app: web.Application) -> None:
    check_declared(app)


def install(app: web.Application) -> None:
    """Wire the check into startup (the middleware itself is in ``create_app``'s list)."""
    app.on_startup.append(_startup_check)
