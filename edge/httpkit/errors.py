"""JSON errors for every HTTP answer of the edge and the hub: ``{"error": {code, message,
message_ja}}`` with a stable code, never a bare 500 or an aiohttp text page.

The two sides differ only in which failures mean "a dependency is down" (the edge's SQLite,
the hub's PostgreSQL) and whether posted forms are decoded up front (the hub's pages take forms;
the edge takes JSON only), so those are the middleware's parameters.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

from aiohttp import web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.typedefs import Middleware

_LOGGER = logging.getLogger(__name__)

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]
# exception classes -> the error answered for them (logged with the traceback: a fault here)
Failures = Mapping[tuple[type[Exception], ...], "ApiError"]


class ApiError(Exception):
    """A refusal the client is told about: HTTP status, stable code, English and Japanese text
    (the code is what programs test; the texts are what people read)."""

    def __init__(self, status: int, code: str, message: str, message_ja: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.message_ja = status, code, message, message_ja

    def response(self) -> web.Response:
        return error_response(self.status, self.code, self.message, self.message_ja)


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON as UTF-8 text (Japanese stays readable, and ~3x smaller than \\u escapes)."""
    return web.Response(text=json.dumps(data, ensure_ascii=False), status=status,
                        content_type="application/json")


def error_response(status: int, code: str, message: str, message_ja: str) -> web.Response:
    return json_response(
        {"error": {"code": code, "message": message, "message_ja": message_ja}}, status=status)


# aiohttp's own refusals (no route, wrong method, body over client_max_size) under stable codes
HTTP_ERRORS = {
    404: ("not_found", "ページまたはAPIが見つかりません"),
    405: ("method_not_allowed", "このメソッドは使えません"),
    413: ("too_large", "リクエストが大きすぎます"),
}

FORMS = ("application/x-www-form-urlencoded", "multipart/form-data")


def route_pattern(request: web.Request) -> str:
    """What a log line may name: the route's pattern (``/api/tickets/{token}``), never the
    concrete path, which can hold a ticket's token (a capability)."""
    resource = request.match_info.route.resource
    return resource.canonical if resource is not None else "(no route)"


def streamed(request: web.Request) -> bool:
    """A file upload whose handler streams its body (the form names its CSRF token in the
    action URL): not decoded up front, so it may exceed the app's form-size limit."""
    return request.content_type == "multipart/form-data" and "csrf" in request.query


async def decode_form(request: web.Request) -> None:
    """Decode a posted form once, before any middleware or handler reads it (aiohttp keeps
    it for ``request.post()``), so none of them meets an undecodable one: an unknown charset,
    bytes that are not UTF-8 or a multipart body without its boundary are the client's error
    (400 ``bad_form``), never a 500 from whichever ``request.post()`` came first."""
    try:
        await request.post()
    except (ValueError, LookupError, HttpProcessingError):  # the last: a broken multipart part
        raise ApiError(400, "bad_form", "The form could not be decoded (send UTF-8 form data)",
                       "フォームの内容を読み取れません（UTF-8 で送ってください）") from None


def errors_as_json(*, internal: ApiError, failures: Failures | None = None,
                   forms: bool = False, logger: logging.Logger | None = None) -> Middleware:
    """The middleware that turns every failure into a JSON error.

    ``internal``: the answer to an unexpected exception (status 500). ``failures``: exception
    classes answered with a given error (e.g. storage down: 503), logged with their traceback.
    ``forms``: decode posted forms first (``decode_form``). ``logger``: where faults are logged
    (the app's module logger, so its log configuration applies).
    """
    known = dict(failures or {})
    log = logger or _LOGGER

    @web.middleware
    async def middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
        try:
            if forms and request.method == "POST" and request.content_type in FORMS and \
                    request.match_info.http_exception is None and not streamed(request):
                await decode_form(request)
            return await handler(request)
        except ApiError as exc:
            return exc.response()
        except web.HTTPException as exc:
            if exc.status < 400:
                raise
            code, ja = HTTP_ERRORS.get(exc.status, ("http_error", "リクエストを処理できません"))
            response = error_response(exc.status, code, exc.reason, ja)
            if "Allow" in exc.headers:  # a 405 must say which methods are allowed
                response.headers["Allow"] = exc.headers["Allow"]
            return response
        except Exception as exc:
            for kinds, error in known.items():
                if isinstance(exc, kinds):
                    log.exception("%s on %s %s", error.code, request.method,
                                  route_pattern(request))
                    return error.response()
            log.exception("unhandled error on %s %s", request.method, route_pattern(request))
            return internal.response()

    return middleware
