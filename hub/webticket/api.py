"""``GET /api/web-tickets/challenge`` and ``POST /api/web-tickets`` (W4, A5).

Why this order of checks: the cheap ones first (address limit, size, shape, proof of work),
then the contact's limit and the one-active rule, and only then the site is asked, so a flood
costs the hub a dictionary lookup and never reaches an office. The web_tickets row is written
only after the site answered with a ticket: a refusal, a timeout or bad input stores nothing.
"""

from __future__ import annotations

import json
import logging
import re
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from edge.domain.model import LANGS, SiteConfig
from hub.ingest import Ingest
from hub.ingest.service import Change
from hub.kit.live import SITE_ID, LiveSites
from hub.kit.runtime import RUNTIME, runtime
from hub.store import HubStore
from hub.store.schema import web_tickets
from hub.store.store import now_utc
from hub.web.api import SETTINGS, ApiError, json_response
from hub.web.ratelimit import client_ip
from hub.webticket.pow import PowError, ProofOfWork, derive_key
from hub.webticket.rules import (
    LIVE,
    ContactError,
    Limits,
    Options,
    active_rows,
    contact_hash,
    mark_done,
    normalize_contact,
    site_today,
)

_LOGGER = logging.getLogger(__name__)

SERVICE = re.compile(r"^[A-Z][A-Z0-9]{0,3}$")
FIELDS = {"site", "service", "lang", "contact", "challenge", "nonce"}
DONE_EVENTS = ("TicketCalled", "TicketFinished", "TicketCancelled")


@dataclass
class WebTickets:
    """Per-process state of the web-ticket routes."""

    opts: Options
    pow: ProofOfWork
    limits: Limits
    contact_key: bytes
    in_flight: set[str] = field(default_factory=set)  # contact hashes being issued now


WEBTICKETS: web.AppKey[WebTickets] = web.AppKey("webtickets", WebTickets)


def build(secret: bytes, opts: Options) -> WebTickets:
    return WebTickets(opts, ProofOfWork(derive_key(secret, "webticket-pow"), opts.pow_bits,
                                        opts.pow_ttl_s),
                      Limits(opts), derive_key(secret, "webticket-contact"))


def _limited(limiter: Any, key: str, what_en: str, what_ja: str) -> None:
    if not limiter.allow(key):
        wait = max(1, round(limiter.retry_after(key)))
        raise ApiError(429, "rate_limited",
                       f"Too many requests {what_en}; try again in {wait} s",
                       f"{what_ja}のリクエストが多すぎます。{wait} 秒後にもう一度お試しください")


def _bad(field_name: str, rule_en: str, rule_ja: str) -> ApiError:
    return ApiError(422, "bad_field", f"{field_name}: {rule_en}", f"{field_name}: {rule_ja}")


async def get_challenge(request: web.Request) -> web.Response:
    wt = request.app[WEBTICKETS]
    ip = client_ip(request, request.app[SETTINGS].trust_proxy)
    _limited(wt.limits.challenge, ip, "from this address", "この接続元から")
    return json_response(wt.pow.issue())


async def _read_body(request: web.Request, limit: int) -> dict[str, Any]:
    if request.content_length is not None and request.content_length > limit:
        raise ApiError(413, "too_large", f"The request is larger than {limit} bytes",
                       f"リクエストが {limit} バイトを超えています")
    raw = await request.content.read(limit + 1)
    if len(raw) > limit:
        raise ApiError(413, "too_large", f"The request is larger than {limit} bytes",
                       f"リクエストが {limit} バイトを超えています")
    try:
        body = json.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, ValueError):
        raise ApiError(400, "bad_json", "The body is not JSON",
                       "リクエストの本文が JSON ではありません") from None
    if not isinstance(body, dict):
        raise ApiError(400, "bad_json", "The body must be a JSON object",
                       "リクエストの本文は JSON オブジェクトにしてください")
    unknown = sorted(set(body) - FIELDS)
    if unknown:
        names = ", ".join(n[:32] for n in unknown[:5])
        raise ApiError(422, "unknown_field", f"Unknown fields: {names}", f"不明な項目: {names}")
    return body


def _text(body: dict[str, Any], name: str, pattern: re.Pattern[str] | None,
          max_len: int) -> str:
    value = body.get(name)
    if not isinstance(value, str) or not 0 < len(value) <= max_len or (
            pattern is not None and not pattern.match(value)):
        raise _bad(name, f"a text of at most {max_len} characters in the expected form",
                   f"{max_len} 文字以内の正しい形式で指定してください")
    return value


def _fields(body: dict[str, Any]) -> tuple[str, str, str, str | None, str, str]:
    """Checked fields; a message names the field and the rule, never the value."""
    lang = body.get("lang", "ja")
    if lang not in LANGS:
        raise _bad("lang", f"one of {', '.join(LANGS)}", f"{'、'.join(LANGS)} のいずれか")
    contact = None
    if body.get("contact") not in (None, ""):
        contact = _text(body, "contact", None, 254).strip() or None
    return (_text(body, "site", SITE_ID, 41), _text(body, "service", SERVICE, 4), str(lang),
            contact, _text(body, "challenge", None, 200), _text(body, "nonce", None, 64))


async def post_web_ticket(request: web.Request) -> web.Response:
    app = request.app
    wt = app[WEBTICKETS]
    _limited(wt.limits.ip, client_ip(request, app[SETTINGS].trust_proxy),
             "from this address", "この接続元から")
    site, service, lang, contact, challenge, nonce = _fields(
        await _read_body(request, wt.opts.body_limit))
    try:
        wt.pow.verify(challenge, nonce)
    except PowError as exc:
        raise ApiError(403, exc.code, exc.message, exc.message_ja) from None
    chash = None
    if contact is not None:
        try:
            chash = contact_hash(wt.contact_key, normalize_contact(contact))
        except ContactError:
            raise _bad("contact", "a mobile phone number or an e-mail address",
                       "携帯電話番号またはメールアドレスを入力してください") from None
        _limited(wt.limits.contact, chash, "for this contact", "この連絡先で")
    rt = runtime(request)
    live = rt.live
    if live is None:
        raise ApiError(503, "no_ingest", "This hub process cannot reach the offices",
                       "このハブのプロセスは窓口と通信できません")
    config = await live.config(site)
    if config is None:
        raise ApiError(404, "unknown_site", f"The hub knows no site {site!r}",
                       f"拠点 {site!r} はハブに登録されていません")
    svc = config.services.get(service)
    if svc is None:
        raise ApiError(404, "unknown_service", f"{site} has no service {service!r}",
                       f"{site} に業務 {service!r} はありません")
    if svc.web is None:
        raise ApiError(409, "web_not_offered", f"{service} does not take tickets online",
                       f"{service} はインターネットでの発券を受け付けていません")
    store = rt.store
    async with store.read() as tx:
        row = await tx.site(site)
    if row is None or not row["online"]:
        raise ApiError(503, "site_offline",
                       "The office is not connected right now, so no ticket can be taken "
                       "online; please take one at the office's kiosk or try again later",
                       "現在この窓口と通信できないため、インターネットで番号札を取れません。"
                       "窓口の発券機をご利用いただくか、しばらくしてからお試しください")
    if chash is not None:
        if chash in wt.in_flight or await _has_active(store, live, chash):
            raise ApiError(409, "contact_active",
                           "This contact already holds a web ticket that has not been called",
                           "この連絡先では、まだ呼ばれていない番号札をすでにお持ちです")
        wt.in_flight.add(chash)
    try:
        return await _issue(app, live, site, service, lang, chash)
    finally:
        if chash is not None:
            wt.in_flight.discard(chash)


async def site_config(ingest: Ingest, site: str) -> SiteConfig | None:
    """The site's config as ``LiveSites.config`` gives it; kept for tests/webticket_support.py
    (which should ask ``LiveSites`` itself; then this goes)."""
    return await LiveSites(ingest).config(site)


async def _has_active(store: HubStore, live: LiveSites, chash: str) -> bool:
    """An active row of today whose ticket is still live at its site; stale ones (an old day,
    or an event this hub missed before the row existed) are marked done on the way."""
    async with store.begin() as tx:
        for r in await active_rows(tx, chash):
            fold = live.fold(r["site"])
            tz = fold.config.timezone if fold is not None and fold.config is not None else None
            state = fold.state if fold is not None else None
            t = state.tickets.get(r["id"]) if state is not None else None
            if r["day"] < site_today(tz) or (t is not None and t.state not in LIVE):
                await mark_done(tx, r["site"], [r["id"]])
                continue
            return True
    return False


async def _issue(app: web.Application, live: LiveSites, site: str, service: str, lang: str,
                 chash: str | None) -> web.Response:
    opts = app[WEBTICKETS].opts
    reply = await live.call(site, "issue", {"service": service, "lang": lang},
                            opts.command_ttl_s)
    if reply is None or (not reply.get("ok") and
                         (reply.get("error") or {}).get("code") in ("expired", "interrupted")):
        raise ApiError(504, "site_no_reply",
                       "The office did not answer in time; no ticket was taken. Please try "
                       "again", "窓口から時間内に応答がなく、番号札は発行されていません。"
                       "もう一度お試しください")
    if not reply.get("ok"):
        err = reply.get("error") or {}
        raise ApiError(409, str(err.get("code") or "refused"),
                       str(err.get("message") or "The office refused the ticket"),
                       str(err.get("message_ja") or "窓口が発券を受け付けませんでした"))
    ticket = (reply.get("data") or {}).get("ticket") or {}
    try:
        tid, number, token, day = (str(ticket["id"]), int(ticket["number"]),
                                   str(ticket["token"]), str(ticket["day"]))
    except (KeyError, TypeError, ValueError):
        _LOGGER.error("site %s answered a web ticket without id/number/token/day", site)
        raise ApiError(502, "bad_site_reply", "The office's answer was not understood",
                       "窓口からの応答を解釈できませんでした") from None
    async with app[RUNTIME].store.begin() as tx:
        await tx.conn.execute(web_tickets.insert().values(
            id=tid, site=site, service=service, day=day, number=number, token=token,
            contact_hash=chash, state="active", created_at=now_utc()))
    _LOGGER.info("web ticket %s %d issued at site %s", service, number, site)
    return json_response({"number": number, "service": service, "site": site, "day": day,
                          "token": token, "url": f"/t/{token}"}, status=201)


def listener(store: HubStore, live: LiveSites) -> Any:
    """Rows done (contact erased) once their ticket is called, finished or cancelled, or its
    day is closed or over at the site.

    Only web tickets have rows: a ticket the site's fold knows as issued at the kiosk is passed
    over, so the usual group (kiosk calls only) costs no transaction; one the fold does not know
    (another day, a paused fold) is looked up all the same.
    """

    def maybe_web(site: str, tid: str) -> bool:
        t = live.ticket(site, tid)
        return t is None or t.channel == "web"

    async def on_change(change: Change) -> None:
        for site, events in change.events.items():
            ids = [e.data["ticket"] for e in events
                   if e.type in DONE_EVENTS and isinstance(e.data.get("ticket"), str)
                   and maybe_web(site, e.data["ticket"])]
            days = [(e.type, str(e.data.get("day") or e.day)) for e in events
                    if e.type in ("DayClosed", "DayOpened")]
            if not ids and not days:
                continue
            async with store.begin() as tx:
                if ids:
                    await mark_done(tx, site, ids)
                for kind, day in days:
                    if kind == "DayClosed":
                        await mark_done(tx, site, day=day)
                    else:
                        await mark_done(tx, site, before=day)

    return on_change
