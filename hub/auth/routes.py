"""Thin aiohttp handlers for sign-in, two-step verification, sign-out and account admin.

The sign-in steps are declared ``public`` (no finished session exists yet) and check the partial
session themselves; their forms carry a CSRF token too (before sign-in: a double-submit cookie,
after the password: the session's token). Everything else is enforced by ``hub.auth.guard``.
"""

from __future__ import annotations

import base64
import secrets
from datetime import datetime
from typing import Any

import qrcode
import qrcode.image.svg
from aiohttp import web

from hub.auth import accounts, mfa, service
from hub.auth.access import FITS
from hub.auth.guard import COOKIE, SESSION_KEY, current_session, ip_of, refuse
from hub.auth.texts import page, pick_lang
from hub.web.api import SETTINGS, STORE, Route

PRE_COOKIE = "madoguchi_login"  # double-submit token of the sign-in form (no session yet)
HOME = "/auth/home"


def _when(value: datetime | None) -> str:
    return "—" if value is None else value.astimezone().strftime("%Y-%m-%d %H:%M:%S %z")


def _next(raw: object) -> str:
    """Only a local path may follow sign-in (no open redirect)."""
    text = str(raw or "")
    return text if text.startswith("/") and not text.startswith("//") else HOME


def _secure(request: web.Request) -> bool:
    """``Secure`` cookies when this request came over TLS or the settings say so."""
    return request.app[SETTINGS].secure_cookies or request.secure


def _set_session(request: web.Request, response: web.StreamResponse, sid: str) -> None:
    response.set_cookie(COOKIE, sid, httponly=True, samesite="Strict", path="/",
                        secure=_secure(request))


async def login_form(request: web.Request) -> web.Response:
    token = request.cookies.get(PRE_COOKIE) or secrets.token_urlsafe(24)
    response = page(request, "login.html", csrf=token, next=_next(request.query.get("next")),
                    message=request.app[SETTINGS].login_message, error=None, login="")
    response.set_cookie(PRE_COOKIE, token, httponly=True, samesite="Strict", path="/auth",
                        secure=_secure(request))
    return response


async def login_post(request: web.Request) -> web.StreamResponse:
    form = await request.post()
    pre = request.cookies.get(PRE_COOKIE)
    if not pre or not service.same_secret(pre, str(form.get("csrf", ""))):
        return refuse(request, 403, "csrf")
    login_id = str(form.get("login", ""))[:64]
    result = await service.login(request.app[STORE], request.app[SETTINGS], login_id,
                                 str(form.get("password", ""))[:1024], ip_of(request))
    nxt = _next(form.get("next"))
    if result.sid is None:
        return page(request, "login.html", status=401 if result.outcome == "bad" else 429,
                    csrf=pre, next=nxt, message=request.app[SETTINGS].login_message,
                    error="locked" if result.outcome == "locked" else "bad_login", login=login_id)
    lang = pick_lang(request)
    target = {"ok": nxt, "mfa": "/auth/mfa", "enrol": "/auth/enrol"}[result.outcome]
    sep = "&" if "?" in target else "?"
    response = web.HTTPSeeOther(f"{target}{sep}lang={lang}" if result.outcome != "ok"
                                else target)
    _set_session(request, response, result.sid)
    raise response


async def _partial(request: web.Request, stages: tuple[str, ...]) -> service.Session:
    current = await current_session(request)
    if current is None or current.stage not in stages:
        raise web.HTTPSeeOther(f"/auth/login?lang={pick_lang(request)}")
    return current


async def _form_for(request: web.Request, current: service.Session) -> Any:
    form = await request.post()
    if not service.csrf_ok(current.sid, str(form.get("csrf", ""))):
        raise web.HTTPForbidden
    return form


async def mfa_form(request: web.Request) -> web.Response:
    current = await _partial(request, ("mfa",))
    return page(request, "mfa.html", csrf=current.csrf, next=HOME, error=None)


async def mfa_post(request: web.Request) -> web.StreamResponse:
    current = await _partial(request, ("mfa",))
    try:
        form = await _form_for(request, current)
    except web.HTTPForbidden:
        return refuse(request, 403, "csrf")
    if await mfa.verify_mfa(request.app[STORE], request.app[SETTINGS], current,
                                str(form.get("code", ""))[:32], ip_of(request)):
        raise web.HTTPSeeOther(f"{HOME}?lang={pick_lang(request)}")
    return page(request, "mfa.html", status=401, csrf=current.csrf, next=HOME, error="bad_code")


def qr_svg(uri: str) -> str:
    """The QR code of ``uri`` as an SVG ``data:`` URL, rendered on the server (no script)."""
    image = qrcode.make(uri, image_factory=qrcode.image.svg.SvgPathImage, box_size=10)
    svg: bytes = image.to_string()
    return "data:image/svg+xml;base64," + base64.b64encode(svg).decode("ascii")


async def _enrol_page(request: web.Request, current: service.Session, uri: str,
                      error: str | None = None) -> web.Response:
    secret = uri.split("secret=")[1].split("&")[0]
    return page(request, "enrol.html", status=401 if error else 200, csrf=current.csrf,
                uri=uri, qr=qr_svg(uri), error=error,
                secret=" ".join(secret[i:i + 4] for i in range(0, len(secret), 4)))


async def _enrollable(request: web.Request) -> service.Session:
    """A session owing enrolment, or a signed-in account without TOTP (optional enrolment).
    An account that has TOTP cannot replace it from a session: an administrator resets it."""
    current = await _partial(request, ("enrol", "ok"))
    if current.stage == "ok":
        listed = await accounts.one(request.app[STORE], current.staff_id)
        if listed is None or listed["mfa"]:
            raise web.HTTPSeeOther(f"{HOME}?lang={pick_lang(request)}")
    return current


async def enrol_form(request: web.Request) -> web.Response:
    current = await _enrollable(request)
    uri = await mfa.start_enrolment(request.app[STORE], request.app[SETTINGS], current)
    return await _enrol_page(request, current, uri)


async def enrol_post(request: web.Request) -> web.StreamResponse:
    current = await _enrollable(request)
    try:
        form = await _form_for(request, current)
    except web.HTTPForbidden:
        return refuse(request, 403, "csrf")
    codes = await mfa.confirm_enrolment(request.app[STORE], request.app[SETTINGS], current,
                                            str(form.get("code", ""))[:32], ip_of(request))
    if codes is None:
        uri = await mfa.pending_uri(request.app[STORE], request.app[SETTINGS], current)
        if uri is None:
            raise web.HTTPSeeOther(f"/auth/enrol?lang={pick_lang(request)}")
        return await _enrol_page(request, current, uri, "bad_code")
    return page(request, "recovery.html", codes=codes)



async def home(request: web.Request) -> web.Response:
    current = request[SESSION_KEY]
    listed = await accounts.one(request.app[STORE], current.staff_id)
    return page(request, "home.html", s=current, csrf=current.csrf, when=_when,
                is_admin=("*", "admin") in current.grants,
                is_ward_staff=any(role == "ward_staff" for _site, role in current.grants),
                sees_stats=any(role in FITS["stats"] for _site, role in current.grants),
                sees_notices=any(role in FITS["notices"] for _site, role in current.grants),
                sees_forms=any(role in FITS["forms"] for _site, role in current.grants),
                mfa=bool(listed and listed["mfa"]))


async def logout(request: web.Request) -> web.StreamResponse:
    current = request[SESSION_KEY]
    await service.logout(request.app[STORE], request.app[SETTINGS], current, ip_of(request))
    response = web.HTTPSeeOther(f"/auth/login?lang={pick_lang(request)}")
    response.del_cookie(COOKIE, path="/")
    raise response


def parse_grants(text: str) -> list[tuple[str, str]]:
    """``"*:admin\\noizumi:ward_staff"`` -> pairs (checked by the service)."""
    grants = []
    for line in filter(None, (ln.strip() for ln in text.replace(",", "\n").splitlines())):
        site, sep, role = line.rpartition(":")
        if not sep:
            raise service.AccountError(f"not site:role: {line!r}")
        grants.append((site.strip(), role.strip()))
    return grants


async def staff_list(request: web.Request, error: str | None = None,
                     status: int = 200) -> web.Response:
    current = request[SESSION_KEY]
    return page(request, "staff_list.html", status=status, csrf=current.csrf, when=_when,
                accounts=await accounts.list_staff(request.app[STORE]), error=error)


async def staff_create(request: web.Request) -> web.StreamResponse:
    current = request[SESSION_KEY]
    form = await request.post()
    try:
        new_id = await service.create_staff(
            request.app[STORE], str(form.get("login", "")), str(form.get("password", "")),
            str(form.get("name", ""))[:128], parse_grants(str(form.get("grants", ""))),
            str(form.get("networks", "")))
    except service.AccountError as exc:
        return await staff_list(request, str(exc), 400)
    await service.audit(request.app[STORE], request.app[SETTINGS], actor=current.staff_id,
                        action="account_created", target=new_id, ip=ip_of(request))
    raise web.HTTPSeeOther(f"/admin/staff?lang={pick_lang(request)}")


async def staff_edit(request: web.Request, error: str | None = None, saved: bool = False,
                     status: int = 200) -> web.Response:
    current = request[SESSION_KEY]
    account = await accounts.one(request.app[STORE], request.match_info["staff_id"])
    if account is None:
        return page(request, "error.html", status=404, code="not_found", status_code=404)
    return page(request, "staff_edit.html", status=status, csrf=current.csrf, a=account,
                error=error, saved=saved)


async def staff_change(request: web.Request) -> web.StreamResponse:
    current = request[SESSION_KEY]
    staff_id, action = request.match_info["staff_id"], request.match_info["action"]
    if await accounts.one(request.app[STORE], staff_id) is None:
        return page(request, "error.html", status=404, code="not_found", status_code=404)
    form = await request.post()
    store, settings, ip = request.app[STORE], request.app[SETTINGS], ip_of(request)
    try:
        if action == "roles":
            await accounts.set_grants(store, settings, current.staff_id, staff_id,
                                      parse_grants(str(form.get("grants", ""))),
                                      str(form.get("networks", "")), ip)
        elif action in ("disable", "enable"):
            await accounts.set_disabled(store, settings, current.staff_id, staff_id,
                                        action == "disable", ip)
        elif action == "reset-mfa":
            await accounts.reset_mfa(store, settings, current.staff_id, staff_id, ip)
        else:
            return page(request, "error.html", status=404, code="not_found", status_code=404)
    except service.AccountError as exc:
        return await staff_edit(request, str(exc), status=400)
    return await staff_edit(request, saved=True)


ROUTES: tuple[Route, ...] = (
    Route("GET", "/auth/login", "Staff sign-in page (?next=, ?lang=ja|en)", login_form,
          access="public", content_type="text/html"),
    Route("POST", "/auth/login", "Sign in: form {login, password, csrf, next}", login_post,
          access="public", content_type="text/html"),
    Route("GET", "/auth/mfa", "Second step: TOTP or recovery code", mfa_form,
          access="public", content_type="text/html"),
    Route("POST", "/auth/mfa", "Check the TOTP or recovery code: form {code, csrf}", mfa_post,
          access="public", content_type="text/html"),
    Route("GET", "/auth/enrol", "TOTP enrolment: QR code (SVG) of a new secret", enrol_form,
          access="public", content_type="text/html"),
    Route("POST", "/auth/enrol", "Confirm enrolment with a code; shows recovery codes once",
          enrol_post, access="public", content_type="text/html"),
    Route("GET", "/auth/home", "After sign-in: previous sign-in/out, failed attempts, roles",
          home, access="staff", content_type="text/html"),
    Route("POST", "/auth/logout", "Sign out (form {csrf})", logout, access="staff",
          content_type="text/html"),
    Route("GET", "/admin/staff", "Staff accounts (administrators)", staff_list,
          access="admin", content_type="text/html"),
    Route("POST", "/admin/staff", "Create an account: form {login, name, password, grants, "
          "networks, csrf}", staff_create, access="admin", content_type="text/html"),
    Route("GET", "/admin/staff/{staff_id}", "One account: roles per site, disable, reset MFA",
          staff_edit, access="admin", content_type="text/html"),
    Route("POST", "/admin/staff/{staff_id}/{action}", "Change an account: action roles, "
          "disable, enable or reset-mfa (form with csrf)", staff_change, access="admin",
          content_type="text/html"),
)
