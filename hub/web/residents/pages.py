"""Resident routes: the status page (``/``), its JSON and stream, a ticket's page, JSON and stream,
and the web access statistics. HTML works without JavaScript; errors are bilingual pages or
``{"error": …}`` JSON, never a 500.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable
from datetime import date
from typing import Any

from aiohttp import web
from sqlalchemy import select

from hub.kit.runtime import runtime
from hub.store.schema import web_tickets
from hub.store.store import now_utc
from hub.web.api import (
    BOOL,
    INT,
    OPT_NAMES,
    OPT_STR,
    SETTINGS,
    STORE,
    STR,
    ApiError,
    Param,
    Route,
    array,
    error_response,
    json_response,
    lang_param,
    obj,
)
from hub.web.ratelimit import client_ip
from hub.web.residents import qr
from hub.web.residents import ticketpage as page
from hub.web.residents.access import ACCESS, TZ
from hub.web.residents.broadcast import Subscriber
from hub.web.residents.feed import LiveFeed
from hub.web.residents.i18n import LANGS, TEXTS, est_text, name, pick_lang
from hub.web.residents.quietcache import QuietHours, clock_text, quiet_sentence
from hub.web.residents.snapshot import DAY_KEYS
from hub.web.residents.tickets import TOKEN, Guard, Watch, frame, pending_view, public_view

_LOGGER = logging.getLogger(__name__)

FEED: web.AppKey[LiveFeed | None] = web.AppKey("residents_feed", object)  # type: ignore[arg-type]
QUIET: web.AppKey[QuietHours] = web.AppKey("residents_quiet", QuietHours)
GUARD: web.AppKey[Guard] = web.AppKey("residents_guard", Guard)

NOTICE_CODES = ("registered", "invalid_contact", "unavailable", "rate_limited", "closed")
PRIVATE = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer",
           "X-Robots-Tag": "noindex"}  # a ticket page's URL is its holder's secret
ERRORS: dict[str, tuple[int, str, str, str]] = {  # outcome -> status, code, en, ja
    "bad": (400, "bad_token", "This is not a valid ticket link. Please scan the QR code on "
            "your ticket again.", "番号札のリンクが正しくありません。番号札のQRコードをもう一度"
            "読み取ってください。"),
    "unknown": (404, "unknown_ticket", "No ticket of today has this link. Tickets are valid "
                "on the day they were issued.", "このリンクの番号札は本日ありません。番号札は"
                "発券した日のみ有効です。"),
    "limited": (429, "rate_limited", "Too many requests from your network. Please wait a "
                "moment and try again.", "リクエストが多すぎます。しばらく待ってからもう一度"
                "お試しください。"),
    "unavailable": (503, "residents_unavailable", "Live waiting status is not available on "
                    "this server right now. Please try again later.", "現在、このサーバーでは"
                    "待ち状況を表示できません。しばらくしてからお試しください。"),
}

def _render(request: web.Request, template: str, lang: str, **ctx: Any) -> str:
    t = TEXTS[lang]
    return runtime(request).render(
        template, lang=lang, t=t, langs=[(code, TEXTS[code]["lang_name"]) for code in LANGS],
        name=lambda values: name(values, lang), est=lambda e: est_text(t, e), **ctx)


def _html(body: str | bytes, lang: str, status: int = 200,
          extra: dict[str, str] | None = None) -> web.Response:
    data = body.encode() if isinstance(body, str) else body
    # CSP, nosniff and framing: the kit's security headers (hub.kit.headers), on every response
    return web.Response(body=data, status=status, content_type="text/html", charset="utf-8",
                        headers={"Content-Language": lang, **(extra or {})})


def _error_page(request: web.Request, outcome: str, retry: int | None = None) -> web.Response:
    status, code, en, ja = ERRORS[outcome]
    headers = {**PRIVATE, **({"Retry-After": str(retry)} if retry else {})}
    return _html(runtime(request).render("residents_error.html", status=status, code=code,
                                         en=en, ja=ja), "ja", status, headers)


def _error_json(outcome: str, retry: int | None = None) -> web.Response:
    status, code, en, ja = ERRORS[outcome]
    resp = error_response(status, code, en, ja)
    resp.headers.update(PRIVATE)
    if retry:
        resp.headers["Retry-After"] = str(retry)
    return resp


def quieter_text(t: dict[str, Any], lang: str, service: dict[str, Any],
                 site_names: dict[str, dict[str, str]]) -> str:
    """"Quieter now: Hikarigaoka, about 5–10 min" (empty when no office is notably quieter)."""
    if not service["quieter"]:
        return ""
    return str(t["quieter"]).format(sites=", ".join(
        str(t["quieter_site"]).format(site=name(site_names[q["site"]], lang), est=est_text(t, q))
        for q in service["quieter"]))


def _feed(request: web.Request) -> LiveFeed | None:
    return request.app[FEED]


# --- status ------------------------------------------------------------------------------------

async def status_page(request: web.Request) -> web.Response:
    """Rendered once per snapshot, language, weekday shown (``?weekday=``, else today's) and
    version of the usual quiet hours; served from memory after that."""
    feed = _feed(request)
    if feed is None:
        return _error_page(request, "unavailable")
    lang = pick_lang(request)
    request.app[ACCESS].hit("status")  # every office's page: no one site
    snap, quiet = feed.snapshot, request.app[QUIET]
    today = now_utc().astimezone(TZ).weekday()
    asked = request.query.get("weekday", "")
    weekday = DAY_KEYS.index(asked) if asked in DAY_KEYS else today
    key = (snap.version, lang, weekday, today, quiet.version)
    body = feed.pages.get(key)
    if body is None:
        at = snap.data["at"]
        t = TEXTS[lang]
        body = feed.pages[key] = _render(
            request, "residents_status.html", lang, snap=snap.data, version=snap.version,
            updated=at[11:19] if at else "—", today=today, weekday=weekday,
            day_keys=DAY_KEYS, picked=asked in DAY_KEYS,
            quiet=lambda site: quiet.section(site, weekday),
            clock=lambda minute: clock_text(t, minute),
            quiet_sentence=lambda section, day: quiet_sentence(t, section, day),
            quieter=lambda v: quieter_text(t, lang, v, snap.data["site_names"])
        ).encode()
    return _html(body, lang, extra={"Cache-Control": "no-cache"})


async def status_json(request: web.Request) -> web.Response:
    feed = _feed(request)
    if feed is None:
        return _error_json("unavailable")
    snap = feed.snapshot
    headers = {"ETag": snap.etag, "Cache-Control": "public, max-age=2"}
    asked = request.headers.get("If-None-Match", "")
    if asked and (asked.strip() == "*" or snap.etag in (e.strip() for e in asked.split(","))):
        return web.Response(status=304, headers=headers)
    return web.Response(body=snap.body, content_type="application/json", headers=headers)


async def status_stream(request: web.Request) -> web.StreamResponse:
    feed = _feed(request)
    if feed is None:
        return _error_json("unavailable")
    if feed.status.full:
        return error_response(503, "too_many_streams", "Too many live viewers; the page "
                              "refreshes by itself instead", "接続が多すぎます")
    return await feed.status.serve(request, Subscriber(), feed.snapshot.sse)


# --- tickets -----------------------------------------------------------------------------------

async def _web_ticket(request: web.Request, token: str) -> dict[str, Any] | None:
    """A web ticket recorded by the hub (maybe not folded yet); None if unknown."""
    try:
        async with request.app[STORE].read() as tx:
            row = (await tx.conn.execute(
                select(web_tickets.c.site, web_tickets.c.service, web_tickets.c.day,
                       web_tickets.c.number).where(web_tickets.c.token == token))).first()
    except Exception:  # logged without the path: it carries the token
        _LOGGER.warning("web ticket lookup failed", exc_info=True)
        return None
    return None if row is None else dict(row._mapping)


async def resolve(request: web.Request) -> tuple[str, Any]:
    """(outcome, detail): ok/pending -> (view, site); limited -> seconds; else None."""
    feed = _feed(request)
    if feed is None:
        return "unavailable", None
    ip = client_ip(request, request.app[SETTINGS].trust_proxy)
    guard = request.app[GUARD]
    wait = guard.admit(ip)
    if wait is not None:
        return "limited", wait
    token = request.match_info["token"]
    if not TOKEN.match(token):
        guard.missed(ip)
        return "bad", None
    found = feed.live.find_token(token)
    if found is not None:
        return "ok", (public_view(*found), found[0].site)
    row = await _web_ticket(request, token)
    if row is not None:
        return "pending", (pending_view(row, feed.live.all()), str(row["site"]))
    guard.missed(ip)
    return "unknown", None


async def ticket_page(request: web.Request) -> web.Response:
    outcome, detail = await resolve(request)
    if outcome not in ("ok", "pending"):
        return _error_page(request, outcome, detail if outcome == "limited" else None)
    view, site = detail
    request.app[ACCESS].hit("ticket", site)
    lang = pick_lang(request)
    code = request.query.get("notice")
    token = request.match_info["token"]
    t = TEXTS[lang]
    payload = view["qr"]
    if outcome == "pending":  # not folded yet: the QR works already (the token is the key)
        fold = request.app[FEED].live.fold(site)  # type: ignore[union-attr]
        config = fold.config if fold is not None else None
        payload = qr.payload(config.status_url if config is not None
                             else f"{request.scheme}://{request.host}/t/{{token}}", token)
    from hub.notify.api import NOTIFIER  # here: hub.notify.api imports hub.web

    notifier = request.app.get(NOTIFIER)
    channels = [ch for ch in page.CHANNELS if notifier is not None and notifier.available(ch)]
    try:
        done = code == "registered" or await page.registered(request.app[STORE], token)
    except Exception:  # logged without the token
        _LOGGER.warning("notice lookup failed", exc_info=True)
        done = False
    body = _render(request, "residents_ticket.html", lang, v=view, token=token,
                   notice=code if code in NOTICE_CODES else None,
                   message=page.message(t, view, lang), rule=page.rule(t, view),
                   qr_svg=page.qr_markup(t, view, payload),
                   show_qr=page.show_qr(view) or (outcome == "pending"),
                   show_checkin=page.show_checkin(view) or (outcome == "pending"),
                   channels=channels, notice_mode=page.notice_mode(channels, done),
                   texts={k: t[k] for k in page.JS_KEYS})
    return _html(body, lang, extra=PRIVATE)


async def ticket_json(request: web.Request) -> web.Response:
    outcome, detail = await resolve(request)
    if outcome not in ("ok", "pending"):
        return _error_json(outcome, detail if outcome == "limited" else None)
    resp = json_response(detail[0])
    resp.headers.update(PRIVATE)
    return resp


async def ticket_stream(request: web.Request) -> web.StreamResponse:
    outcome, detail = await resolve(request)
    feed = _feed(request)
    if outcome not in ("ok", "pending") or feed is None:
        return _error_json(outcome, detail if outcome == "limited" else None)
    if feed.tickets.full:
        return error_response(503, "too_many_streams", "Too many live viewers; reload the "
                              "page to update", "接続が多すぎます")
    view, site = detail
    watch = Watch(request.match_info["token"])
    watch.last = frame(view)
    feed.watchers.add(site, watch)
    try:
        return await feed.tickets.serve(request, watch.sub, watch.last)
    finally:
        feed.watchers.remove(site, watch)


# --- W8 ------------------------------------------------------------------------------------------

_DAY = re.compile(r"^\d{4}-\d{2}-\d{2}$")


async def web_access_stats(request: web.Request) -> web.Response:
    day = request.query.get("day") or now_utc().astimezone(TZ).date().isoformat()
    try:
        if not _DAY.match(day):
            raise ValueError(day)
        date.fromisoformat(day)
    except ValueError:
        raise ApiError(400, "bad_parameter", "day must be a date YYYY-MM-DD",
                       "day は YYYY-MM-DD 形式の日付で指定してください") from None
    pages = await request.app[ACCESS].day(day)
    return json_response({"day": day, "pages": {
        page: {**_views(sites.values()), "by_site": {
            site: _views([hours]) for site, hours in sorted(sites.items())}}
        for page, sites in sorted(pages.items())}})


def _views(per_site: Iterable[dict[str, int]]) -> dict[str, Any]:
    """{"total", "by_hour"} summed over the given hour -> views maps."""
    by_hour: dict[str, int] = {}
    for hours in per_site:
        for hour, n in hours.items():
            by_hour[hour] = by_hour.get(hour, 0) + n
    return {"total": sum(by_hour.values()), "by_hour": dict(sorted(by_hour.items()))}


STATUS = obj({"version": INT, "at": OPT_STR, "site_names": {"type": "object"},
              "compare": {"type": "array"},
              "sites": array(obj({"site": STR, "name": OPT_NAMES, "online": BOOL,
                                  "services": array(obj({"code": STR, "name": OPT_NAMES,
                                                         "waiting": INT}))}))})
TICKET = obj({"site": STR, "site_name": OPT_NAMES, "service": STR, "service_name": OPT_NAMES,
              "number": INT, "state": STR, "phase": STR, "day": STR})
_VIEWS = {"total": INT, "by_hour": {"type": "object", "additionalProperties": INT}}
WEB_ACCESS = obj({"day": STR, "pages": {"type": "object", "additionalProperties": obj({
    **_VIEWS, "by_site": {"type": "object", "additionalProperties": obj(_VIEWS)}})}})

ROUTES: tuple[Route, ...] = (
    Route("GET", "/", "Resident status page: every site's queues, waits, hours, quieter "
          "offices, usually quiet hours (HTML, ?lang=ja|en|zh|ko, ?weekday=mon..sun)",
          status_page, access="public", content_type="text/html", query=(
              lang_param(LANGS),
              Param("weekday", "the weekday whose usually quiet hours are shown (default: "
                    "today's)", schema={"enum": list(DAY_KEYS)}))),
    Route("GET", "/api/status", "The public status snapshot (ETag / If-None-Match)",
          status_json, access="public", response=STATUS,
          also={304: "not modified: If-None-Match names the current ETag"}),
    Route("GET", "/api/status/stream", "Server-sent events: the status snapshot on each "
          "change", status_stream, access="public", content_type="text/event-stream"),
    Route("GET", "/t/{token}", "A ticket's own page (the QR on the paper ticket)", ticket_page,
          access="ticket_token", content_type="text/html", query=(
              lang_param(LANGS),
              Param("notice", "outcome of a notice form just posted (shown once)",
                    schema={"enum": list(NOTICE_CODES)}))),
    Route("GET", "/api/tickets/{token}", "A ticket's own view (JSON)", ticket_json,
          access="ticket_token", response=TICKET),
    Route("GET", "/t/{token}/stream", "Server-sent events: the ticket's view on each change",
          ticket_stream, access="ticket_token", content_type="text/event-stream"),
    Route("GET", "/api/stats/web-access", "Page views per page and hour, and per office in "
          "by_site (\"\": pages of no one office) (W8); ?day=YYYY-MM-DD",
          web_access_stats, access="stats", response=WEB_ACCESS, query=(
              Param("day", "the day, YYYY-MM-DD (default: today in Japan)",
                    schema={"type": "string", "format": "date"}),)),
)
