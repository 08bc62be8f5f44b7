"""HTTP plumbing of the residents' pages: language, cookies, CSRF, rendering, reading a POST.

Why a double-submit CSRF token (like ``hub.notices.portal``): residents have no session before
they start, so the token is a random value in an ``HttpOnly``, ``SameSite=Strict`` cookie for
``/f`` and in every form; another site can neither read the cookie nor make the browser send
it. The draft is a bearer token in its own cookie (``SameSite=Lax`` so the resume link from a
mail works, ``Secure`` behind https, ``Path=/f/<form>``); only its hash is stored.

Uploads are streamed (``request.multipart``): the app's request limit is small, attachments are
up to the field's own limit, and the intake reads them in memory only, so nothing refused ever
touches a disk. Such a form names its CSRF token in the action URL (``?csrf=``, as the staff's
uploads do: ``edge.httpkit.errors.streamed``), so it is checked before any file is read.
"""

from __future__ import annotations

import functools
import re
import secrets
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import Any
from urllib.parse import quote

from aiohttp import BodyPartReader, hdrs, web
from aiohttp.http_exceptions import HttpProcessingError
from aiohttp.multipart import content_disposition_filename, parse_content_disposition

from hub.auth.service import same_secret
from hub.forms.context import FORMS, Forms
from hub.forms.pages import catalogue, render_resident
from hub.kit.i18n import pick_lang
from hub.web.ratelimit import client_ip

TEXTS = catalogue("resident")
LANG_NAMES = {"ja": "日本語", "en": "English"}
CSRF_COOKIE = "madoguchi_forms_csrf"
DRAFT_COOKIE = "madoguchi_form_draft"
CHUNK = 64 * 1024
TEXT_MAX = 256 * 1024  # all text fields of one page together
HEADERS = {"Referrer-Policy": "no-referrer"}
_OLD = re.compile(r"MSIE |Trident/")

FileSink = Callable[[str, str, str | None, AsyncIterator[bytes]], Awaitable[None]]


class BadPost(Exception):
    """A body that is not a form we sent (broken multipart, too much text)."""


def ctx_of(request: web.Request) -> Forms:
    return request.app[FORMS]


def lang_of(request: web.Request) -> str:
    return pick_lang(request, TEXTS)


def ip_of(request: web.Request) -> str:
    return client_ip(request, ctx_of(request).hub.trust_proxy)[:64]


def old_browser(request: web.Request) -> bool:
    """Internet Explorer (003 §8.1): the pages are not made for it."""
    return bool(_OLD.search(request.headers.get("User-Agent", "")))


def _csrf_token(request: web.Request) -> str:
    got = request.cookies.get(CSRF_COOKIE, "")
    return got if 20 <= len(got) <= 64 and got.isascii() else secrets.token_urlsafe(24)


def render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    """A resident's page in the chosen language with the CSRF cookie (re)set."""
    lang = str(values.pop("lang", None) or lang_of(request))
    token = _csrf_token(request)
    response = render_resident(request, template, TEXTS, lang, status, csrf=token,
                               langs=LANG_NAMES.items(), **values)
    response.headers.update(HEADERS)
    response.set_cookie(CSRF_COOKIE, token, httponly=True, samesite="Strict", path="/f",
                        secure=ctx_of(request).hub.secure_cookies)
    return response


def message(request: web.Request, status: int, key: str, back: str | None = None,
            **values: Any) -> web.Response:
    """A page of one message (``<key>_title`` and ``<key>`` in the catalogue)."""
    return render(request, "resident_message.html", status, key=key, back=back, **values)


def see_other(request: web.Request, path: str, lang: str | None = None) -> web.Response:
    """303 to ``path`` (quoted: a path parameter may hold anything a client typed)."""
    sep = "&" if "?" in path else "?"
    where = quote(f"{path}{sep}lang={lang or lang_of(request)}", safe="/?=&-._~%")
    return web.Response(status=303, headers={"Location": where, "Cache-Control": "no-store",
                                             **HEADERS})


def draft_token(request: web.Request) -> str:
    return request.cookies.get(DRAFT_COOKIE, "")


def set_draft_cookie(request: web.Request, response: web.StreamResponse, form_id: str,
                     token: str) -> None:
    response.set_cookie(DRAFT_COOKIE, token, httponly=True, samesite="Lax",
                        path=_cookie_path(form_id), secure=ctx_of(request).hub.secure_cookies,
                        max_age=ctx_of(request).settings.draft_days * 86400)


def drop_draft_cookie(response: web.StreamResponse, form_id: str) -> None:
    response.del_cookie(DRAFT_COOKIE, path=_cookie_path(form_id))


def _cookie_path(form_id: str) -> str:
    """``/f/<id>`` with the id quoted: a path parameter may hold anything a client typed
    (a line break in a header is refused by aiohttp with a 500)."""
    return "/f/" + quote(form_id, safe="")


def csrf_ok(request: web.Request, given: str) -> bool:
    """The double-submit check; cross-site and same-site (sibling host) requests never pass."""
    if request.headers.get("Sec-Fetch-Site", "") in ("cross-site", "same-site"):
        return False
    cookie = request.cookies.get(CSRF_COOKIE, "")
    return bool(cookie) and bool(given) and same_secret(cookie, given)


async def read_post(request: web.Request,
                    on_file: FileSink | None = None) -> tuple[dict[str, list[str]], bool]:
    """The text fields of a POST (name -> values) and whether its CSRF token is right.

    Files (multipart) go to ``on_file(name, filename, declared type, chunks)`` as they arrive,
    and only after a correct CSRF field; an empty file input is skipped."""
    fields: dict[str, list[str]] = {}
    if request.content_type != "multipart/form-data":
        try:
            posted = await request.post()
        except (ValueError, HttpProcessingError, web.HTTPException):
            raise BadPost from None
        for key in posted:
            fields.setdefault(key, []).extend(str(v) for v in posted.getall(key)
                                              if isinstance(v, str))
        return fields, csrf_ok(request, (fields.get("csrf") or [""])[0])
    size = 0
    ok = csrf_ok(request, request.query.get("csrf", ""))
    try:
        reader = await request.multipart()
        while (part := await reader.next()) is not None:
            if not isinstance(part, BodyPartReader):
                continue
            name, filename = _disposition(part.headers.get(hdrs.CONTENT_DISPOSITION))
            if not name:
                continue
            if filename is not None:
                if filename and ok and on_file is not None:
                    await on_file(name, filename, part.headers.get("Content-Type"),
                                  _chunks(part))
                while await part.read_chunk(CHUNK):  # drain whatever was not read
                    pass
                continue
            value = await part.text()
            size += len(value)
            if size > TEXT_MAX:
                raise BadPost
            fields.setdefault(name, []).append(value)
            if name == "csrf" and not ok:
                ok = csrf_ok(request, value)
    except (ValueError, UnicodeDecodeError, AssertionError, HttpProcessingError):
        raise BadPost from None
    return fields, ok


def _disposition(header: str | None) -> tuple[str | None, str | None]:
    """A part's (name, filename), as ``BodyPartReader.name``/``.filename`` give them.

    Why cached: aiohttp parses the header anew for each of the two (and rebuilds a 128-item
    escape table each time); the text parts' headers are the same for every resident's POST, so
    this was a sixth of a page POST's CPU with 200 residents (issue 17's bench). A file part's
    header carries the resident's file name: never kept in the cache."""
    if header is not None and "filename" in header.lower():
        return _parse_disposition(header)
    return _cached_disposition(header)


@functools.lru_cache(maxsize=512)
def _cached_disposition(header: str | None) -> tuple[str | None, str | None]:
    return _parse_disposition(header)


def _parse_disposition(header: str | None) -> tuple[str | None, str | None]:
    _kind, params = parse_content_disposition(header)
    return (content_disposition_filename(params, "name"),
            content_disposition_filename(params, "filename"))


async def _chunks(part: BodyPartReader) -> AsyncIterator[bytes]:
    while chunk := await part.read_chunk(CHUNK):
        yield chunk
