"""The residents' notice portal (N5): ``/n/{token}`` from the e-mail → a magic-link button or a
one-time code → ``/n/view`` (the notice, its message and its signed PDFs) → ``/n/file/{id}``.

Server-rendered, no JavaScript, ja/en/zh/ko like the other residents' pages. Why every POST
carries a double-submit token (a random value in an ``HttpOnly``, ``SameSite=Strict`` cookie
for ``/n`` and in the form): the forms are used before any session exists, so there is no
session to bind a token to; another site can neither read the cookie nor make the browser send
it, so it cannot sign a resident in to someone else's notice or send codes in their name.
Requests the browser marks ``Sec-Fetch-Site`` cross-site or same-site (a sibling host could
plant the cookie) are refused as well.

The session is a signed cookie (``portal_auth.sign_session``, 30 minutes) for ``Path=/n``.
Unknown links get the same 404 page whether they ever existed or not. The auth logic is in
``portal_auth`` (no aiohttp there).
"""

from __future__ import annotations

import secrets
from pathlib import Path
from typing import Any
from urllib.parse import quote
from zoneinfo import ZoneInfo

from aiohttp import web
from markupsafe import Markup

from hub.auth.service import same_secret
from hub.kit.i18n import pick_lang
from hub.kit.runtime import runtime
from hub.notices import portal_auth
from hub.notices.context import NOTICES, Notices
from hub.notices.portal_auth import TEXTS
from hub.web.api import Route
from hub.web.ratelimit import client_ip

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
LANG_NAMES = {"ja": "日本語", "en": "English", "zh": "中文", "ko": "한국어"}
SESSION_COOKIE = "madoguchi_notice"
FORM_COOKIE = "madoguchi_notice_form"
TOKYO = ZoneInfo("Asia/Tokyo")
# the link token is in the path: no Referer to anywhere, and nothing kept in caches
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer"}


def lang_of(request: web.Request) -> str:
    return pick_lang(request, TEXTS)


def ctx_of(request: web.Request) -> Notices:
    return request.app[NOTICES]


def _ip(request: web.Request) -> str:
    return client_ip(request, ctx_of(request).hub.trust_proxy)[:64]


def _form_token(request: web.Request) -> str:
    got = request.cookies.get(FORM_COOKIE, "")
    return got if 20 <= len(got) <= 64 and got.isascii() else secrets.token_urlsafe(24)


def render(request: web.Request, template: str, status: int = 200,
           **values: Any) -> web.Response:
    """A portal page; every page (re)sets the form cookie its forms' ``csrf`` field matches."""
    lang = lang_of(request)
    token = _form_token(request)
    html = runtime(request).render(f"notices/{template}", lang=lang, t=TEXTS[lang],
                                   langs=LANG_NAMES.items(), csrf=token, **values)
    response = web.Response(text=html, status=status, content_type="text/html",
                            charset="utf-8", headers={"Content-Language": lang, **HEADERS})
    response.set_cookie(FORM_COOKIE, token, httponly=True, samesite="Strict", path="/n",
                        secure=ctx_of(request).hub.secure_cookies)
    return response


def message(request: web.Request, status: int, title: str, text: str,
            back: str | None = None) -> web.Response:
    """A page of one message: not found, signed out, form expired, new link sent."""
    return render(request, "portal_message.html", status, title=title, text=text, back=back)


def not_found(request: web.Request) -> web.Response:
    t = TEXTS[lang_of(request)]
    return message(request, 404, t["not_found_title"], t["not_found"])


async def form_ok(request: web.Request) -> bool:
    """The double-submit check (and no cross-site POST at all)."""
    if request.headers.get("Sec-Fetch-Site", "") in ("cross-site", "same-site"):
        return False
    cookie = request.cookies.get(FORM_COOKIE, "")
    given = str((await request.post()).get("csrf", ""))
    return bool(cookie) and same_secret(cookie, given)


def form_refused(request: web.Request, token: str | None = None) -> web.Response:
    t = TEXTS[lang_of(request)]
    back = f"/n/{token}?lang={lang_of(request)}" if token else None
    return message(request, 403, t["form_expired_title"], t["form_expired"], back)


def to_view(request: web.Request, recipient_id: str) -> web.Response:
    """303 to the notice with the session cookie."""
    ctx = ctx_of(request)
    response = web.Response(status=303, headers={
        "Location": f"/n/view?lang={lang_of(request)}", **HEADERS})
    response.set_cookie(SESSION_COOKIE, portal_auth.sign_session(ctx, recipient_id, ctx.clock()),
                        httponly=True, samesite="Lax", path="/n",
                        secure=ctx.hub.secure_cookies)
    return response


def _until(found: portal_auth.Found) -> str:
    until = found.recipient.locked_until
    return "" if until is None else until.astimezone(TOKYO).strftime("%H:%M")


def start_page(request: web.Request, found: portal_auth.Found, status: int = 200, *,
               sent: bool = False, error: str | None = None,
               tries_left: int | None = None) -> web.Response:
    ctx = ctx_of(request)
    lang = lang_of(request)
    error_text = None
    if error is not None:
        error_text = portal_auth.reason(error, lang).replace("{n}", str(tries_left or 0))
    return render(request, "portal_start.html", status, token=request.match_info["token"],
                  title=found.notice.title, auth=found.notice.auth, state=found.status,
                  test_mode=bool(found.notice.test_mode), sent=sent, error=error,
                  error_text=error_text, until=_until(found),
                  minutes=ctx.settings.code_minutes)


async def start(request: web.Request) -> web.Response:
    """The link from the e-mail. A GET never signs in and never uses the link up (mail
    scanners open links too): it shows the next step as a button."""
    ctx = ctx_of(request)
    found = await portal_auth.find(ctx, request.match_info["token"], ctx.clock())
    if found is None:
        return not_found(request)
    return start_page(request, found, sent=request.query.get("sent") == "1")


async def open_post(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    if not await form_ok(request):
        return form_refused(request, token)
    ctx = ctx_of(request)
    result = await portal_auth.consume_link(ctx, token, ctx.clock(), _ip(request))
    if result.ok and result.recipient_id is not None:
        return to_view(request, result.recipient_id)
    return await _again(request, result)


async def _again(request: web.Request, result: portal_auth.Result) -> web.Response:
    """The token's page again, with what went wrong (its state explains used/expired/lock)."""
    ctx = ctx_of(request)
    found = await portal_auth.find(ctx, request.match_info["token"], ctx.clock())
    if found is None:
        return not_found(request)
    status = {"too_many": 429, "locked": 429, "mail_failed": 503}.get(result.code, 400)
    error = None if result.code == found.status else result.code
    return start_page(request, found, status, sent=result.code in (
        "wrong_code", "bad_format"), error=error, tries_left=result.tries_left)


async def code_post(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    if not await form_ok(request):
        return form_refused(request, token)
    ctx = ctx_of(request)
    result = await portal_auth.send_code(ctx, token, ctx.clock())
    if result.ok:  # a reload of the next page must not send another code
        raise web.HTTPSeeOther(f"/n/{token}?sent=1&lang={lang_of(request)}", headers=HEADERS)
    return await _again(request, result)


async def verify_post(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    if not await form_ok(request):
        return form_refused(request, token)
    ctx = ctx_of(request)
    code = str((await request.post()).get("code", ""))[:32]
    result = await portal_auth.check_code(ctx, token, code, ctx.clock(), _ip(request))
    if result.ok and result.recipient_id is not None:
        return to_view(request, result.recipient_id)
    return await _again(request, result)


async def relink_post(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    if not await form_ok(request):
        return form_refused(request, token)
    ctx = ctx_of(request)
    result = await portal_auth.send_new_link(ctx, token, ctx.clock())
    if result.ok:  # the old link no longer works: nothing to go back to
        t = TEXTS[lang_of(request)]
        return message(request, 200, t["relink_sent_title"], t["relink_sent"])
    return await _again(request, result)


async def step_get(request: web.Request) -> web.Response:
    """A GET of a form's address (the language switch on a page a POST answered): back to
    the link's page in that language; nothing is done."""
    token, step = request.match_info["token"], request.match_info["step"]
    sent = "&sent=1" if step == "verify" else ""
    raise web.HTTPSeeOther(f"/n/{quote(token, safe='')}?lang={lang_of(request)}{sent}",
                           headers=HEADERS)


def signed_out(request: web.Request) -> web.Response:
    t = TEXTS[lang_of(request)]
    return message(request, 401, t["signed_out_title"], t["signed_out"])


def _message_html(notice: Any, lang: str) -> Markup:
    from hub.notices.message import render_html  # another part of the module, imported late

    text = notice.message_ja if lang == "ja" else (notice.message_en or notice.message_ja)
    return render_html(str(text or ""))


async def view(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    rid = portal_auth.read_session(ctx, request.cookies.get(SESSION_COOKIE), ctx.clock())
    got = None if rid is None else await portal_auth.view(ctx, rid)
    if got is None:
        return signed_out(request)
    _rec, notice, files = got
    return render(request, "portal_view.html", title=notice.title,
                  test_mode=bool(notice.test_mode), files=files,
                  message_html=_message_html(notice, lang_of(request)))


def content_disposition(filename: str) -> str:
    """``attachment`` with an ASCII fallback and the UTF-8 name (RFC 6266 / 5987)."""
    plain = all(c.isascii() and c.isprintable() and c not in '"\\' for c in filename)
    ascii_name = filename if plain else "notice.pdf"
    return f"attachment; filename=\"{ascii_name}\"; filename*=UTF-8''{quote(filename, safe='')}"


async def file(request: web.Request) -> web.Response:
    ctx = ctx_of(request)
    now = ctx.clock()
    rid = portal_auth.read_session(ctx, request.cookies.get(SESSION_COOKIE), now)
    if rid is None:
        return signed_out(request)
    got = await portal_auth.download(ctx, rid, request.match_info["file_id"], now, _ip(request))
    if got is None:
        return not_found(request)
    data, name = got
    return web.Response(body=data, content_type="application/pdf", headers={
        "Content-Disposition": content_disposition(name), **HEADERS})


async def logout(request: web.Request) -> web.Response:
    if not await form_ok(request):
        return form_refused(request)
    t = TEXTS[lang_of(request)]
    response = message(request, 200, t["logged_out_title"], t["logged_out"])
    response.del_cookie(SESSION_COOKIE, path="/n")
    return response


def routes() -> list[Route]:
    """The portal's routes, all public (the pages check the link, code or session
    themselves). ``/n/view`` and the others come before ``/n/{token}``."""
    html = "text/html"
    return [
        Route("GET", "/n/view", "The signed-in resident's notice: message and PDFs", view,
              access="public", content_type=html),
        Route("GET", "/n/file/{file_id}", "Download one of the resident's signed PDFs",
              file, access="public", content_type="application/pdf"),
        Route("POST", "/n/logout", "Sign out of the notice portal (form {csrf})", logout,
              access="public", content_type=html),
        Route("GET", "/n/{token}", "A notice link: its title and the next step (a GET never "
              "signs in)", start, access="public", content_type=html),
        Route("POST", "/n/{token}/open", "Open with the magic link (form {csrf}); 303 to "
              "/n/view with the session", open_post, access="public", content_type=html),
        Route("POST", "/n/{token}/code", "Mail a one-time code (form {csrf}); 303 back",
              code_post, access="public", content_type=html),
        Route("POST", "/n/{token}/verify", "Check the one-time code (form {csrf, code}); 303 "
              "to /n/view with the session", verify_post, access="public", content_type=html),
        Route("GET", "/n/{token}/{step}", "A form's address opened by GET (the language "
              "switch after a POST): 303 to the link's page", step_get, access="public",
              content_type=html),
        Route("POST", "/n/{token}/relink", "Mail a new link for a used or expired one (form "
              "{csrf})", relink_post, access="public", content_type=html),
    ]
