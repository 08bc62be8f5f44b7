"""The residents' reservation pages (R5, R6, R8): phone-first, server-rendered, no JavaScript.

``/r`` the reservation ID → ``/r/slots/{ctx}`` the office's slots as ○ / △ / × → ``/r/book/
{ctx}/{slot}`` phone, e-mail and a 4-digit PIN → ``/r/done/{token}`` the confirmation with its
QR. ``/r/manage`` ID + PIN → ``/r/mine/{mine}`` change or cancel. The ID travels in signed,
15-minute page tokens (``tokens.py``), never in a URL. Counts are never shown or sent: a slot is
○, △ or ×, and a "just taken" answer lists the next free slots.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import os
import re
import time
import unicodedata
from pathlib import Path
from typing import Any

from aiohttp import web
from markupsafe import Markup

from edge.domain.calendar import Calendar
from edge.domain.model import LANGS
from hub.kit.i18n import load_catalogue, pick_lang
from hub.kit.runtime import RUNTIME, Runtime, runtime
from hub.notify.api import NOTIFIER
from hub.notify.contacts import InvalidContact
from hub.notify.contacts import email as check_email
from hub.notify.contacts import phone as check_phone
from hub.notify.senders import Sender
from hub.notify.service import build_senders
from hub.reservations import booking, tokens
from hub.reservations.ids import ID_RE, normalise_id
from hub.reservations.mail import confirmation, send_later
from hub.reservations.reminders import setup_reminders
from hub.reservations.tables import reservation_ids
from hub.reservations.window import TOKYO, window
from hub.siteconfig import ward
from hub.store.store import now_utc
from hub.web.api import Route
from hub.web.residents.access import count

HERE = Path(__file__).resolve().parent
TEMPLATES = HERE / "templates"
TEXTS = load_catalogue(HERE / "i18n", LANGS)  # residents; staff pages: staff.{ja,en}.json
LANG_NAMES = {"ja": "日本語", "en": "English", "zh": "中文", "ko": "한국어"}
DAYS_SHOWN = 14
PIN_RE = re.compile(r"^[0-9]{4}$")
HEADERS = {"Cache-Control": "no-store"}


def lang_of(request: web.Request) -> str:
    return pick_lang(request, TEXTS)


def render(request: web.Request, template: str, status: int = 200, **values: Any) -> web.Response:
    lang = lang_of(request)
    html = runtime(request).render(f"reservations/{template}", lang=lang, t=TEXTS[lang],
                                   langs=LANG_NAMES.items(), **values)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers={"Content-Language": lang, **HEADERS})


POLICY_TTL_S = 30.0  # the ward's closed days change rarely; every request re-reading them did not
CHOICES_TTL_S = 1.0  # ○/△/× may lag a booking by a second; the booking itself always decides
# per app (so two hubs in one test process never share them): policy, and choices per office
CACHE: web.AppKey[dict[str, tuple[float, Any]]] = web.AppKey("reservations_cache", dict)


# one booking attempt per slot at a time in this process: under a rush the others wait, then
# mostly find the slot full in memory instead of each queueing for the database (the database
# still enforces capacity across processes; this only orders this process's own attempts)
SLOT_LOCKS: web.AppKey[dict[str, asyncio.Lock]] = web.AppKey("reservation_locks", dict)


def setup(app: web.Application, rt: Runtime) -> None:
    app[CACHE] = {}
    app[SLOT_LOCKS] = {}
    setup_reminders(app, rt, TEXTS, _sender_of_app)


async def policy(request: web.Request) -> booking.Policy:
    """The booking rules: main office and Saturday rule from the environment, the ward's closed
    days from the sites' pushed calendars (``/admin/ward-calendar``). Kept for ``POLICY_TTL_S``
    per app: reading every site's configuration on each page cost more than the page."""
    rt = runtime(request)
    now, cache = time.monotonic(), request.app[CACHE]
    cached = cache.get("policy")
    if cached is not None and now - cached[0] < POLICY_TTL_S:
        made: booking.Policy = cached[1]
        return made
    days = await ward.current(rt.store, await ward.known_sites(rt.store))
    closed = frozenset(d for s in days for d in s.closed)
    made = booking.Policy(calendar=Calendar(closed=closed),
                          main_office=os.environ.get("MADOGUCHI_RESERVATION_MAIN_OFFICE", "0001"),
                          saturday_any_id=os.environ.get(
                              "MADOGUCHI_RESERVATION_SATURDAY_ANY_ID", "1") != "0")
    cache["policy"] = (now, made)
    return made


def query(request: web.Request, **extra: str) -> str:
    return f"?lang={lang_of(request)}" + "".join(f"&{k}={v}" for k, v in extra.items())


async def start(request: web.Request) -> web.Response:
    count(request, "reservation_start")
    return render(request, "start.html", rid="", error=None)


async def start_post(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    raw = str((await request.post()).get("rid", ""))[:40]
    rid = normalise_id(raw)
    if not ID_RE.match(rid):
        return render(request, "start.html", 400, rid=raw, error="bad_id")
    async with rt.store.read() as tx:
        office = (await tx.conn.execute(reservation_ids.select().where(
            reservation_ids.c.rid == rid))).first()
        held = await booking._active(tx.conn, rid)
    if office is None:
        return render(request, "start.html", 404, rid=raw, error="unknown_id")
    if held is not None:
        return render(request, "start.html", 409, rid=raw, error="already_booked")
    ctx = tokens.sign(rt.settings.key, "ctx", rid, now_utc())
    raise web.HTTPSeeOther(f"/r/slots/{ctx}{query(request)}")


async def office_of(request: web.Request, rid: str) -> str | None:
    async with runtime(request).store.read() as tx:
        got = (await tx.conn.execute(reservation_ids.select().where(
            reservation_ids.c.rid == rid))).first()
    return None if got is None else str(got._mapping["office"])


async def choices(request: web.Request, office: str, pol: booking.Policy,
                   now: _dt.datetime) -> list[dict[str, Any]]:
    """The next days' slots this ID may book, each with ○/△/× and whether it opens later.
    Shared by every resident of the office for ``CHOICES_TTL_S`` (the release rush reads it
    thousands of times a second; the marks are the same for all of them)."""
    key, started, cache = f"choices:{office}", time.monotonic(), request.app[CACHE]
    cached = cache.get(key)
    if cached is not None and started - cached[0] < CHOICES_TTL_S:
        shared: list[dict[str, Any]] = cached[1]
        return shared
    made = await _choices(request, office, pol, now)
    cache[key] = (started, made)
    return made


async def _choices(request: web.Request, office: str, pol: booking.Policy,
                   now: _dt.datetime) -> list[dict[str, Any]]:
    local = now.astimezone(TOKYO)
    since = local.replace(hour=0, minute=0, second=0, microsecond=0)
    until = since + _dt.timedelta(days=DAYS_SHOWN + 46)
    offices = [office] + ([pol.main_office] if pol.saturday_any_id
                          and pol.main_office != office else [])
    days: dict[_dt.date, list[dict[str, Any]]] = {}
    rt = runtime(request)
    for o in offices:
        for slot_id, starts, mark, slot_published in await booking.availability_with_publish(
                rt.store, o, since, until):
            start_local = starts.astimezone(TOKYO)
            if o != office and start_local.weekday() != 5:
                continue
            win = window(start_local.date(), pol.calendar, pol.rules, slot_published)
            if now > win.last:
                continue
            opens = None if win.contains(now) else win.first
            days.setdefault(start_local.date(), []).append(
                {"id": slot_id, "time": start_local.strftime("%H:%M"), "mark": mark,
                 "opens": opens, "office": o})
    shown = sorted(days.items())[:DAYS_SHOWN]
    return [{"date": d, "slots": sorted(s, key=lambda x: x["time"])} for d, s in shown]


async def slots(request: web.Request) -> web.Response:
    rt = runtime(request)
    now = now_utc()
    rid = tokens.read(rt.settings.key, "ctx", request.match_info["ctx"], now)
    office = await office_of(request, rid) if rid else None
    if rid is None or office is None:
        return render(request, "expired.html", 410)
    count(request, "reservation_slots", office)
    days = await choices(request, office, await policy(request), now)
    return render(request, "slots.html", days=days, ctx=request.match_info["ctx"],
                   error=request.query.get("error"), rid=rid,
                   slot_list=slot_list(request, office, days))


def slot_list(request: web.Request, office: str, days: list[dict[str, Any]]) -> Markup:
    """The rendered ○/△/× list, shared like ``choices`` (the same for every resident of the
    office and language): rendering it was most of the page's cost under a rush."""
    lang, cache = lang_of(request), request.app[CACHE]
    key = f"list:{office}:{lang}"
    cached = cache.get(key)
    if cached is not None and cached[1][0] is days:
        html: Markup = cached[1][1]
        return html
    html = Markup(runtime(request).render(  # noqa: S704  (autoescaped template output)
        "reservations/_slot_list.html", days=days, t=TEXTS[lang], lang=lang))
    cache[key] = (time.monotonic(), (days, html))
    return html


async def slots_post(request: web.Request) -> web.StreamResponse:
    chosen = str((await request.post()).get("slot", ""))
    ctx = request.match_info["ctx"]
    if not chosen.isdigit():
        raise web.HTTPSeeOther(f"/r/slots/{ctx}{query(request, error='choose')}")
    raise web.HTTPSeeOther(f"/r/book/{ctx}/{chosen}{query(request)}")


async def slot_view(request: web.Request, slot: booking.Slot) -> dict[str, Any]:
    lang = lang_of(request)
    rt = runtime(request)
    config = await rt.live.config(slot.site) if rt.live is not None else None
    name = config.name.get(lang) or config.name.get("ja") if config is not None else slot.site
    local = slot.starts_at.astimezone(TOKYO)
    return {"site": name, "date": local.date(), "time": local.strftime("%H:%M"),
            "end": slot.ends_at.astimezone(TOKYO).strftime("%H:%M"), "id": slot.id}


async def book_page(request: web.Request) -> web.Response:
    rt = runtime(request)
    rid = tokens.read(rt.settings.key, "ctx", request.match_info["ctx"], now_utc())
    slot_raw = request.match_info["slot"]
    slot = await booking.slot(rt.store, int(slot_raw)) if slot_raw.isdigit() else None
    if rid is None or slot is None:
        return render(request, "expired.html", 410)
    count(request, "reservation_book", slot.site)
    return render(request, "book.html", slot=await slot_view(request, slot), form={},
                   errors={}, ctx=request.match_info["ctx"])


_PHONE = re.compile(r"0[0-9]{9,10}")
_NOISE = re.compile(r"[\s\-()‐-―−ー]")


def normalise_phone(raw: str) -> str | None:
    """Any Japanese phone number (landline or mobile, 10 or 11 digits), digits only."""
    digits = _NOISE.sub("", unicodedata.normalize("NFKC", raw))
    return digits if _PHONE.fullmatch(digits) else None


def normalise_email(raw: str) -> str | None:
    try:
        return check_email(raw)
    except InvalidContact:
        return None


def _check_form(form: dict[str, str]) -> tuple[dict[str, str], str | None, str | None]:
    """Every problem of the booking form by field; e-mail is required (the confirmation goes
    there), the phone optional."""
    errors: dict[str, str] = {}
    phone = normalise_phone(form["phone"]) if form["phone"] else None
    email = normalise_email(form["email"]) if form["email"] else None
    if form["phone"] and phone is None:
        errors["phone"] = "bad_phone"
    if not form["email"]:
        errors["email"] = "email_required"
    elif email is None:
        errors["email"] = "bad_email"
    if not PIN_RE.match(form["pin"]):
        errors["pin"] = "bad_pin"
    elif form["pin"] != form["pin2"]:
        errors["pin2"] = "pin_mismatch"
    return errors, phone, email


FULL_TTL_S = 2.0  # a slot seen full answers "just taken" without the database for this long


async def book_post(request: web.Request) -> web.StreamResponse:
    """Book. Under a release rush most attempts find their slot already full: once a slot is
    seen full, later attempts for it get "just taken" from memory for ``FULL_TTL_S`` (the
    database still decides every booking that goes through; a place freed meanwhile shows on
    the list, which is at most a second old)."""
    rt = runtime(request)
    now = now_utc()
    ctx = request.match_info["ctx"]
    rid = tokens.read(rt.settings.key, "ctx", ctx, now)
    slot_raw = request.match_info["slot"]
    if rid is None or not slot_raw.isdigit():
        return render(request, "expired.html", 410)
    just_taken = f"/r/slots/{ctx}{query(request, error='just_taken')}"
    posted = await request.post()
    form = {k: str(posted.get(k, ""))[:254].strip() for k in ("phone", "email", "pin", "pin2")}
    errors, phone, email = _check_form(form)
    lock = request.app[SLOT_LOCKS].setdefault(slot_raw, asyncio.Lock())
    async with lock:
        full = request.app[CACHE].get(f"full:{slot_raw}")
        if not errors and full is not None and time.monotonic() - full[0] < FULL_TTL_S:
            raise web.HTTPSeeOther(just_taken)
        slot = await booking.slot(rt.store, int(slot_raw))
        if slot is None:
            return render(request, "expired.html", 410)
        if errors:
            return render(request, "book.html", 400, slot=await slot_view(request, slot),
                          ctx=ctx, errors=errors,
                          form={"phone": form["phone"], "email": form["email"]})
        try:
            done = await booking.book(rt.store, rt.settings, await policy(request), rid=rid,
                                      slot_id=slot.id, pin=form["pin"], phone=phone,
                                      email=email, lang=lang_of(request), now=now)
        except booking.BookingRefused as exc:
            if exc.code == "full":  # just taken: back to the list, which shows what is free
                request.app[CACHE][f"full:{slot_raw}"] = (time.monotonic(), None)
                raise web.HTTPSeeOther(just_taken) from None
            return render(request, "book.html", 409, slot=await slot_view(request, slot),
                          ctx=ctx, errors={"": exc.code},
                          form={"phone": form["phone"], "email": form["email"]})
    sender = _email_sender(request)
    lang = lang_of(request)
    base = os.environ.get("MADOGUCHI_HUB_PUBLIC_URL", "").rstrip("/")
    url = f"{base}/r/done/{done.token}?lang={lang}"
    site_name = str((await slot_view(request, slot))["site"])
    if sender is not None and email is not None:
        send_later(sender, confirmation(
            TEXTS[lang], lang=lang, reservation=done.reservation, to=email, rid=rid,
            site=site_name, starts=slot.starts_at, ends=slot.ends_at, url=url))
    sms = _sender_of_app(request.app, "sms")
    mobile = _mobile(phone)
    if sms is not None and mobile is not None:  # and by SMS where a mobile number was given
        send_later(sms, confirmation(
            TEXTS[lang], lang=lang, reservation=done.reservation, to=mobile, rid=rid,
            site=site_name, starts=slot.starts_at, ends=slot.ends_at, url=url, short=True))
    raise web.HTTPSeeOther(f"/r/done/{done.token}{query(request, mail='1' if sender else '0')}")


def _mobile(phone: str | None) -> str | None:
    """The SMS adapter's form (E.164) of a Japanese mobile number, else None (a landline)."""
    if phone is None:
        return None
    try:
        return check_phone(phone)
    except InvalidContact:
        return None


def _email_sender(request: web.Request) -> Sender | None:
    return _sender_of_app(request.app)


def _sender_of_app(app: web.Application, channel: str = "email") -> Sender | None:
    """The hub's sender for ``channel`` (email, sms): the notice module's (the demo's sinks
    too), else one built from the settings; None when the channel is off."""
    notifier = app.get(NOTIFIER)
    if notifier is not None:
        return notifier.senders.get(channel)
    return build_senders(app[RUNTIME].settings).get(channel)


async def done(request: web.Request) -> web.Response:
    rt = runtime(request)
    found = await booking.by_token(rt.store, request.match_info["token"])
    if found is None:
        return render(request, "expired.html", 404)
    mine, state = found
    count(request, "reservation_done", mine.slot.site)
    from hub.web.residents.qr import svg

    base = os.environ.get("MADOGUCHI_HUB_PUBLIC_URL", "").rstrip("/")
    qr = svg(f"{base}/r/done/{mine.token}", TEXTS[lang_of(request)]["qr_label"])
    return render(request, "done.html", slot=await slot_view(request, mine.slot), rid=mine.rid,
                   state=state, qr=qr, mailed=request.query.get("mail") == "1")


ROUTES: tuple[Route, ...] = (
    Route("GET", "/r", "Reservations: enter the reservation ID", start, access="public",
          content_type="text/html"),
    Route("POST", "/r", "Check the reservation ID (form {rid}); 303 to its slots", start_post,
          access="public", content_type="text/html"),
    Route("GET", "/r/slots/{ctx}", "The ID's bookable slots as ○/△/× (signed page token)",
          slots, access="public", content_type="text/html"),
    Route("POST", "/r/slots/{ctx}", "Choose a slot (form {slot}); 303 to the booking form",
          slots_post, access="public", content_type="text/html"),
    Route("GET", "/r/book/{ctx}/{slot}", "The booking form: phone, e-mail, PIN", book_page,
          access="public", content_type="text/html"),
    Route("POST", "/r/book/{ctx}/{slot}", "Book (form {phone, email, pin, pin2}); 303 to the "
          "confirmation, or back to the list when the slot was just taken", book_post,
          access="public", content_type="text/html"),
    Route("GET", "/r/done/{token}", "The confirmation with its check-in QR", done,
          access="ticket_token", content_type="text/html"),
)
