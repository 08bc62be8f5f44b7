"""``POST /t/{token}/notice``: register an e-mail address or a mobile number for a ticket (W5).

The ticket page posts a form (no JavaScript needed) and gets a 303 back to
``/t/{token}?notice=<code>``; JSON clients get 201 or ``{"error": {code, message, message_ja}}``.
Codes: registered | invalid_contact | unavailable | rate_limited | closed. Why limits per client
address and per ticket: the token is the only credential, so guessing tokens and flooding one
contact with registrations must both be slow. Nothing about the contact is logged or echoed.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Any

from aiohttp import web

from edge.domain.model import LANGS
from hub.notify import contacts
from hub.notify.service import Notifier, ahead_n
from hub.web.api import SETTINGS, Route, error_response, json_response
from hub.web.ratelimit import RateLimiter, client_ip

NOTIFIER: web.AppKey[Notifier | None] = web.AppKey("notifier", object)  # type: ignore[arg-type]
LIMITS: web.AppKey[tuple[RateLimiter, RateLimiter]] = web.AppKey("notice_limits", tuple)
MAX_FORM = 4096  # a contact, a channel and a language: anything bigger is not our form
TOKEN = re.compile(r"[A-Za-z0-9_-]{16,128}")

_ERRORS: dict[str, tuple[int, str, str]] = {
    "invalid_contact": (400, "The e-mail address or mobile number is not valid",
                        "メールアドレスまたは携帯電話番号が正しくありません"),
    "too_large": (413, "The request is too large", "リクエストが大きすぎます"),
    "invalid_request": (400, "Send channel (email|sms), contact and lang (ja|en|zh|ko)",
                        "channel（email か sms）、contact、lang（ja/en/zh/ko）を送ってください"),
    "closed": (409, "This ticket is not waiting any more (or unknown): no notice can be set",
               "この整理券は待ち状態ではない（または存在しない）ため、通知を登録できません"),
    "rate_limited": (429, "Too many registrations; please wait a little",
                     "登録が多すぎます。しばらくしてからお試しください"),
    # 409, not 503: a channel this hub has no sender for is a standing choice of the office,
    # not a passing fault (a process without a notifier at all still answers 503)
    "unavailable": (409, "This notice channel is not available at this office",
                    "この通知方法は現在ご利用いただけません"),
}


def setup(app: web.Application, _runtime: object) -> None:
    """Per-process limits; the notifier (``NOTIFIER``) is set by the hub's composition root
    when this process runs ingest (web-only processes answer ``unavailable``). The route
    itself is declared in ``notice_routes`` and registered by the kit (``hub.notify.module``)."""
    app[LIMITS] = (RateLimiter(rate=0.2, burst=10),  # per client address: 12/min, bursts of 10
                   RateLimiter(rate=1 / 60, burst=5))  # per ticket: 5, then one a minute
    if NOTIFIER not in app:
        app[NOTIFIER] = None


# what post_notice reads, as a form (the ticket page) or as JSON: an e-mail address, or a
# Japanese mobile number (hub.notify.contacts says exactly what passes)
NOTICE_FORM = {"oneOf": [
    {"type": "object", "required": ["channel", "contact"], "properties": {
        "channel": {"const": "email"}, "lang": {"enum": list(LANGS)},
        "contact": {"type": "string", "format": "email", "maxLength": contacts.MAX_EMAIL}}},
    {"type": "object", "required": ["channel", "contact"], "properties": {
        "channel": {"const": "sms"}, "lang": {"enum": list(LANGS)},
        "contact": {"type": "string", "pattern": r"^(\+81 ?|0)[6789]0-?[0-9]{4}-?[0-9]{4}$"}}},
]}


def notice_routes() -> tuple[Route, ...]:
    """The route as the OpenAPI document lists it."""
    return (Route("POST", "/t/{token}/notice", "Register an e-mail address or mobile number for "
                  "a ticket's notices (form: 303 to /t/{token}?notice=CODE; JSON: 201 or 4xx)",
                  post_notice, access="ticket_token",
                  body={"application/x-www-form-urlencoded": NOTICE_FORM,
                        "application/json": NOTICE_FORM},
                  response={"type": "object", "required": ["notice"],
                            "properties": {"notice": {"const": "registered"}}},
                  status=201, also={303: "a form post: back to the ticket page, "
                                         "/t/{token}?notice=CODE"}),)


class _TooLarge(Exception):
    pass


async def _fields(request: web.Request) -> tuple[dict[str, str], bool]:
    """The posted fields and whether the client speaks JSON. Raises KeyError when unreadable."""
    if (request.content_length or 0) > MAX_FORM:
        raise _TooLarge
    if request.content_type == "application/json":
        raw = await request.content.read(MAX_FORM + 1)
        if len(raw) > MAX_FORM:
            raise _TooLarge
        try:
            data: Any = json.loads(raw)
        except (ValueError, UnicodeDecodeError):
            raise KeyError("not json") from None
        if not isinstance(data, dict):
            raise KeyError("not an object")
        return {k: v for k, v in data.items() if isinstance(v, str)}, True
    form = await request.post()
    return {k: v for k, v in form.items() if isinstance(v, str)}, False


def _answer(token: str, code: str, as_json: bool, retry_after: float = 0.0,
            lang: str = "", status: int | None = None) -> web.Response:
    if not as_json:  # back to the ticket page, in the language the form was sent in
        safe = token if TOKEN.fullmatch(token) else "invalid"
        suffix = f"&lang={lang}" if lang in LANGS else ""
        raise web.HTTPSeeOther(f"/t/{safe}?notice={code}{suffix}")
    if code == "registered":
        return json_response({"notice": "registered"}, status=201)
    usual, message, message_ja = _ERRORS[code]
    response = error_response(status or usual, code, message, message_ja)
    if retry_after:
        response.headers["Retry-After"] = str(max(1, round(retry_after)))
    return response


async def post_notice(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    as_json = request.content_type == "application/json"
    per_ip, per_ticket = request.app[LIMITS]
    ip = client_ip(request, request.app[SETTINGS].trust_proxy)
    if not per_ip.allow(ip):
        return _answer(token, "rate_limited", as_json, per_ip.retry_after(ip))
    try:
        fields, as_json = await _fields(request)
    except _TooLarge:
        return _answer(token, "too_large" if as_json else "invalid_contact", as_json)
    except (KeyError, ValueError):
        return _answer(token, "invalid_request" if as_json else "invalid_contact", as_json)
    channel, lang, raw = fields.get("channel", ""), fields.get("lang", "ja"), fields.get(
        "contact", "")
    if channel not in ("email", "sms") or lang not in LANGS:
        return _answer(token, "invalid_request" if as_json else "invalid_contact", as_json,
                       lang=lang)
    notifier = request.app[NOTIFIER]
    if notifier is None:  # a web-only process: another hub process may serve this
        return _answer(token, "unavailable", as_json, lang=lang, status=503)
    if not notifier.available(channel):
        return _answer(token, "unavailable", as_json, lang=lang)
    try:
        contact = contacts.normalise(channel, raw)
    except contacts.InvalidContact:
        return _answer(token, "invalid_contact", as_json, lang=lang)
    key = hashlib.sha256(token.encode()).hexdigest()
    if not per_ticket.allow(key):
        return _answer(token, "rate_limited", as_json, per_ticket.retry_after(key), lang=lang)
    found = notifier.find(token) if TOKEN.fullmatch(token) else None
    if found is None or found[2].state != "waiting":
        return _answer(token, "closed", as_json, lang=lang)
    site, state, ticket = found
    await notifier.register(site, ticket, token, channel, contact, lang, ahead_n(state, ticket))
    return _answer(token, "registered", as_json, lang=lang)
