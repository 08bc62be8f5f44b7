"""The resident's own reservation (R6): ``/r/manage`` ID + PIN → ``/r/mine/{mine}`` (a signed
15-minute page token naming the reservation) → change to another slot or cancel.

Wrong PINs are counted in the database and the fifth locks the reservation for 30 minutes
(``booking.open_mine``); the page says so without telling whether the ID exists.
"""

from __future__ import annotations

from aiohttp import web

from hub.kit.runtime import runtime
from hub.reservations import booking, tokens
from hub.reservations.ids import ID_RE, normalise_id
from hub.reservations.pages import (
    choices,
    lang_of,
    office_of,
    policy,
    query,
    render,
    slot_view,
)
from hub.store.store import now_utc
from hub.web.api import Route
from hub.web.residents.access import count


async def manage(request: web.Request) -> web.Response:
    count(request, "reservation_manage")
    return render(request, "manage.html", rid="", error=None)


async def manage_post(request: web.Request) -> web.StreamResponse:
    rt = runtime(request)
    posted = await request.post()
    raw, pin = str(posted.get("rid", ""))[:40], str(posted.get("pin", ""))[:8]
    rid = normalise_id(raw)
    if not ID_RE.match(rid) or not (len(pin) == 4 and pin.isdigit()):
        return render(request, "manage.html", 400, rid=raw, error="bad_login")
    now = now_utc()
    try:
        mine = await booking.open_mine(rt.store, rt.settings, rid, pin, now)
    except booking.AccessDenied as exc:
        # not_found and wrong_pin read the same: the page tells nothing about which IDs exist
        code = "locked" if exc.code == "locked" else "bad_login"
        return render(request, "manage.html", 423 if code == "locked" else 401, rid=raw,
                       error=code)
    token = tokens.sign(rt.settings.key, "mine", mine.reservation, now)
    raise web.HTTPSeeOther(f"/r/mine/{token}{query(request)}")


async def _mine(request: web.Request) -> tuple[booking.Mine | None, str]:
    rt = runtime(request)
    token = request.match_info["mine"]
    reservation = tokens.read(rt.settings.key, "mine", token, now_utc())
    mine = await booking.by_id(rt.store, reservation) if reservation else None
    return mine, token


async def mine_page(request: web.Request) -> web.Response:
    mine, token = await _mine(request)
    if mine is None:
        return render(request, "expired.html", 410)
    count(request, "reservation_mine", mine.slot.site)
    office = await office_of(request, mine.rid)
    days = await choices(request, office, await policy(request), now_utc()) if office else []
    return render(request, "mine.html", slot=await slot_view(request, mine.slot),
                   rid=mine.rid, mine=token, days=days, current=mine.slot.id,
                   error=request.query.get("error"), done=request.query.get("done"))


async def cancel_post(request: web.Request) -> web.StreamResponse:
    mine, _token = await _mine(request)
    if mine is None:
        return render(request, "expired.html", 410)
    await booking.cancel(runtime(request).store, mine, now_utc())
    return render(request, "cancelled.html", slot=await slot_view(request, mine.slot))


async def change_post(request: web.Request) -> web.StreamResponse:
    mine, token = await _mine(request)
    if mine is None:
        return render(request, "expired.html", 410)
    chosen = str((await request.post()).get("slot", ""))
    if not chosen.isdigit() or int(chosen) == mine.slot.id:
        raise web.HTTPSeeOther(f"/r/mine/{token}{query(request, error='choose')}")
    try:
        await booking.change(runtime(request).store, await policy(request), mine, int(chosen),
                             now_utc())
    except booking.BookingRefused as exc:
        code = "just_taken" if exc.code == "full" else exc.code
        raise web.HTTPSeeOther(f"/r/mine/{token}{query(request, error=code)}") from None
    raise web.HTTPSeeOther(f"/r/done/{mine.token}?lang={lang_of(request)}")


ROUTES: tuple[Route, ...] = (
    Route("GET", "/r/manage", "Open one's reservation: reservation ID and PIN", manage,
          access="public", content_type="text/html"),
    Route("POST", "/r/manage", "Check ID + PIN (form {rid, pin}); the fifth wrong PIN locks "
          "the reservation for 30 minutes; 303 to it", manage_post, access="public",
          content_type="text/html"),
    Route("GET", "/r/mine/{mine}", "One's reservation, with change and cancel (signed page "
          "token)", mine_page, access="public", content_type="text/html"),
    Route("POST", "/r/mine/{mine}/cancel", "Cancel; the place is given back", cancel_post,
          access="public", content_type="text/html"),
    Route("POST", "/r/mine/{mine}/change", "Move to another slot (form {slot}); the new place "
          "is taken and the old one given back at once, or nothing changes", change_post,
          access="public", content_type="text/html"),
)
