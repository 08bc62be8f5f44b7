"""Staff pages for slots (R1): ``/admin/reservations`` lists an office's slots by date with what
is booked (staff see counts; residents never do), makes slots in bulk by pattern with their
publication moment, and closes or resizes a slot. Closing or shrinking never cancels anyone:
the page lists the reservation IDs affected, so staff can contact them. Every change audited.
"""

from __future__ import annotations

import datetime as _dt
from typing import Any
from urllib.parse import urlencode

from aiohttp import web
from sqlalchemy import and_, select

from edge.domain.calendar import Calendar
from hub.audit.service import audit_key, record
from hub.auth.guard import SESSION_KEY, ip_of
from hub.auth.texts import TEXTS as AUTH_TEXTS
from hub.auth.texts import pick_lang
from hub.kit.i18n import load_catalogue
from hub.kit.runtime import runtime
from hub.kit.uploads import UploadError, read_upload
from hub.reservations import booking, records
from hub.reservations.ids import ID_RE, normalise_id
from hub.reservations.pages import HERE, policy
from hub.reservations.slots import Pattern, rows
from hub.reservations.tables import reservation_slots, reservations
from hub.reservations.window import TOKYO
from hub.store.store import now_utc
from hub.web.api import ApiError, Route

PATH = "/admin/reservations"
STAFF_TEXTS = load_catalogue(HERE / "i18n", ("ja", "en"), prefix="staff.")


def _render(request: web.Request, status: int = 200, **values: Any) -> web.Response:
    lang = pick_lang(request)
    current = request[SESSION_KEY]
    values = {"done": None, "affected": None, "error": None, "form": {}, "erase": None,
              "visits": [], "imported": None, "slots": [],
              "erased": None, "columns": records.COLUMNS, "defaults": records.DEFAULT_COLUMNS,
              **values}
    html = runtime(request).render("reservations/staff.html", lang=lang, t=AUTH_TEXTS[lang],
                                   r=STAFF_TEXTS[lang], csrf=current.csrf, **values)
    return web.Response(text=html, status=status, content_type="text/html", charset="utf-8",
                        headers={"Content-Language": lang, "Cache-Control": "no-store"})


def _date(raw: str, default: _dt.date) -> _dt.date | None:
    if not raw:
        return default
    try:
        return _dt.date.fromisoformat(raw)
    except ValueError:
        return None


async def _slots(request: web.Request, office: str, day: _dt.date) -> list[dict[str, Any]]:
    since = _dt.datetime.combine(day, _dt.time(0), TOKYO)
    async with runtime(request).store.read() as tx:
        got = (await tx.conn.execute(select(reservation_slots).where(and_(
            reservation_slots.c.office == office, reservation_slots.c.starts_at >= since,
            reservation_slots.c.starts_at < since + _dt.timedelta(days=7)))
            .order_by(reservation_slots.c.starts_at))).all()
    out = []
    for row in got:
        r = row._mapping
        local = r["starts_at"].astimezone(TOKYO)
        out.append({"id": r["id"], "date": local.date(), "time": local.strftime("%H:%M"),
                    "group": r["counter_group"], "booked": r["booked"],
                    "capacity": r["capacity"], "closed": r["closed"],
                    "published": r["published_at"].astimezone(TOKYO).strftime("%Y-%m-%d %H:%M")})
    return out


async def page(request: web.Request) -> web.Response:
    office = request.query.get("office", "0001")[:4]
    day = _date(request.query.get("from", ""), now_utc().astimezone(TOKYO).date())
    if day is None or not (office.isdigit() and len(office) == 4):
        return _render(request, 400, error="bad_filter", office=office, day=None, slots=[],
                       form={}, affected=None)
    return _render(request, office=office, day=day, slots=await _slots(request, office, day),
                   form={}, error=None, affected=None, done=request.query.get("done"),
                   visits=await records.today(runtime(request).store, office, now_utc()))


def _pattern(form: dict[str, str], days: list[str]) -> tuple[Pattern | None, str | None]:
    try:
        first, last = (_dt.date.fromisoformat(form["first"]),
                       _dt.date.fromisoformat(form["last"]))
        start, end = _dt.time.fromisoformat(form["start"]), _dt.time.fromisoformat(form["end"])
        every, capacity = int(form["every"]), int(form["capacity"])
        publish = _dt.datetime.fromisoformat(form["publish"]).replace(tzinfo=TOKYO)
    except (KeyError, ValueError):
        return None, "bad_pattern"
    if not (form["office"].isdigit() and len(form["office"]) == 4) or not form["site"]:
        return None, "bad_pattern"
    if last < first or (last - first).days > 370 or not 5 <= every <= 240 or \
            not 0 <= capacity <= 100 or start >= end or not days:
        return None, "bad_pattern"
    return Pattern(form["office"], form["site"][:64], (form.get("service") or "M")[:8],
                   (form.get("group") or "default")[:32], first, last,
                   frozenset(int(d) for d in days if d.isdigit() and int(d) < 7), start, end,
                   every, capacity, publish), None


async def create(request: web.Request) -> web.StreamResponse:
    posted = await request.post()
    form = {k: str(posted.get(k, ""))[:64].strip() for k in (
        "office", "site", "service", "group", "first", "last", "start", "end", "every",
        "capacity", "publish")}
    pattern, error = _pattern(form, [str(v) for v in posted.getall("days", [])])
    if pattern is None:
        return _render(request, 400, error=error, office=form["office"], day=None, slots=[],
                       form=form, affected=None)
    pol = await policy(request)
    made = rows(pattern, Calendar(closed=pol.calendar.closed), pol.main_office)
    rt = runtime(request)
    added = await booking.add_slots(rt.store, made)
    key, key_id = audit_key(rt.settings)
    await record(rt.store, actor=request[SESSION_KEY].staff_id,
                 action="reservation_slots_created", target=pattern.office,
                 detail={"count": added, "first": pattern.first_day.isoformat(),
                         "last": pattern.last_day.isoformat(),
                         "publish": pattern.published_at.isoformat()},
                 ip=ip_of(request), key=key, key_id=key_id)
    query = urlencode({"office": pattern.office, "from": pattern.first_day.isoformat(),
                       "done": f"created:{added}", "lang": pick_lang(request)})
    raise web.HTTPSeeOther(f"{PATH}?{query}")


async def change(request: web.Request) -> web.StreamResponse:
    """Close a slot or set its capacity (form {slot, capacity, closed, confirm}). The first post
    shows the reservations it affects; ``confirm=1`` applies it. Nobody is cancelled."""
    posted = await request.post()
    raw_slot, raw_cap = str(posted.get("slot", "")), str(posted.get("capacity", ""))
    closed = str(posted.get("closed", "")) == "1"
    rt = runtime(request)
    slot = await booking.slot(rt.store, int(raw_slot)) if raw_slot.isdigit() else None
    if slot is None or not (raw_cap.isdigit() and int(raw_cap) <= 100):
        raise web.HTTPSeeOther(f"{PATH}?{urlencode({'lang': pick_lang(request)})}")
    capacity = int(raw_cap)
    async with rt.store.read() as tx:
        held = [str(r[0]) for r in (await tx.conn.execute(
            select(reservations.c.rid).where(and_(reservations.c.slot_id == slot.id,
                                                  reservations.c.status == "active"))
            .order_by(reservations.c.created_at))).all()]
    affected = held if closed else held[capacity:]
    local = slot.starts_at.astimezone(TOKYO)
    if str(posted.get("confirm", "")) != "1":
        return _render(request, office=slot.office, day=local.date(),
                       slots=await _slots(request, slot.office, local.date()), form={},
                       error=None, affected={"slot": slot.id, "ids": affected,
                                             "capacity": capacity, "closed": closed,
                                             "when": local.strftime("%Y-%m-%d %H:%M")})
    async with rt.store.begin() as tx:
        await tx.conn.execute(reservation_slots.update()
                              .where(reservation_slots.c.id == slot.id)
                              .values(capacity=capacity, closed=closed))
    key, key_id = audit_key(rt.settings)
    await record(rt.store, actor=request[SESSION_KEY].staff_id,
                 action="reservation_slot_changed", target=str(slot.id),
                 detail={"old": {"capacity": slot.capacity, "closed": slot.closed},
                         "new": {"capacity": capacity, "closed": closed},
                         "count": len(affected)}, ip=ip_of(request), key=key, key_id=key_id)
    query = urlencode({"office": slot.office, "from": local.date().isoformat(),
                       "done": "changed", "lang": pick_lang(request)})
    raise web.HTTPSeeOther(f"{PATH}?{query}")


async def export(request: web.Request) -> web.StreamResponse:
    """The office's reservations in a date range as CSV, the columns staff chose, audited."""
    q = request.query
    office = q.get("office", "")[:4]
    first, last = _date(q.get("from", ""), _dt.date.min), _date(q.get("to", ""), _dt.date.min)
    if not (office.isdigit() and len(office) == 4) or first in (None, _dt.date.min) or \
            last in (None, _dt.date.min) or last < first or (last - first).days > 400:
        raise ApiError(400, "bad_filter", STAFF_TEXTS["en"]["errors"]["bad_filter"],
                       STAFF_TEXTS["ja"]["errors"]["bad_filter"])
    encoding = "cp932" if q.get("encoding") == "cp932" else "utf-8-sig"
    columns = q.getall("columns", []) or list(records.DEFAULT_COLUMNS)
    rt = runtime(request)
    out = await records.export_csv(rt.store, rt.settings, office=office, first=first,
                                   last=last, columns=columns, encoding=encoding)
    key, key_id = audit_key(rt.settings)
    await record(rt.store, actor=request[SESSION_KEY].staff_id, action="export",
                 target="reservations", detail={"filters": {
                     "office": office, "from": first.isoformat(), "to": last.isoformat(),
                     "columns": ",".join(columns)[:150]}, "count": out.rows},
                 ip=ip_of(request), key=key, key_id=key_id)
    charset = "shift_jis" if encoding == "cp932" else "utf-8"
    return web.Response(body=out.data, headers={
        "Content-Type": f"text/csv; charset={charset}", "Cache-Control": "no-store",
        "Content-Disposition": f'attachment; filename="reservations-{office}-{first}.csv"'})


async def erase(request: web.Request) -> web.Response:
    """Erase the data of chosen reservation IDs (form {csrf, ids, confirm}); the first post
    shows what would be erased, ``confirm=1`` erases; audited with the count."""
    posted = await request.post()
    raw = str(posted.get("ids", ""))[:20000]
    rids = sorted({normalise_id(x) for x in raw.replace(",", "\n").splitlines()
                   if ID_RE.match(normalise_id(x))})
    rt = runtime(request)
    office = "0001"
    if str(posted.get("confirm", "")) != "1":
        async with rt.store.read() as tx:
            held = (await tx.conn.execute(select(reservations.c.rid, reservations.c.status)
                                          .where(reservations.c.rid.in_(rids)))).all()
        return _render(request, office=office, day=None, slots=[],
                       erase={"ids": rids, "rows": len(held), "text": "\n".join(rids)})
    done = await records.erase(rt.store, rids)
    key, key_id = audit_key(rt.settings)
    await record(rt.store, actor=request[SESSION_KEY].staff_id,
                 action="reservation_data_erased", target="reservations",
                 detail={"count": done.reservations, "ids": done.ids},
                 ip=ip_of(request), key=key, key_id=key_id)
    return _render(request, office=office, day=None, slots=[],
                   erased={"ids": done.ids, "rows": done.reservations,
                           "returned": done.places_returned})


MAX_UPLOAD = 20 * 1024 * 1024  # = ids.MAX_BYTES: a ward's whole file, streamed


async def import_file(request: web.Request) -> web.Response:
    """The ward's reservation-ID file (multipart: file, id_column, office_column), streamed up
    to ``MAX_UPLOAD``; all or nothing, every bad line listed; audited when stored."""
    from hub.reservations.ids import Layout
    from hub.reservations.imports import import_ids

    try:
        data, fields = await read_upload(request, MAX_UPLOAD, ("id_column", "office_column"),
                                         text_max=40)
    except UploadError as exc:
        if exc.code == "too_large":
            return _render(request, 413, office="0001", day=None,
                           imported={"errors": [(0, "too_large", "")]})
        return _render(request, 400, office="0001", day=None, error="bad_upload")
    layout = Layout(id_column=fields.get("id_column") or Layout.id_column,
                    office_column=fields.get("office_column") or Layout.office_column)
    rt = runtime(request)
    got = await import_ids(rt.store, data, now_utc(), layout)
    if not got.errors:
        key, key_id = audit_key(rt.settings)
        await record(rt.store, actor=request[SESSION_KEY].staff_id,
                     action="reservation_ids_imported", target="upload",
                     detail={"count": got.added + got.unchanged + got.moved, "new": got.added,
                             "moved": got.moved}, ip=ip_of(request), key=key, key_id=key_id)
    return _render(request, 400 if got.errors else 200, office="0001", day=None, imported={
        "errors": [(e.line, e.code, e.value) for e in got.errors[:50]],
        "more": max(0, len(got.errors) - 50), "added": got.added, "unchanged": got.unchanged,
        "moved": got.moved, "encoding": got.encoding})


ROUTES: tuple[Route, ...] = (
    Route("GET", PATH, "Reservation slots of an office for a week (?office=0001&from=DATE), "
          "with what is booked; the pattern form", page, access="ward_staff",
          content_type="text/html"),
    Route("POST", f"{PATH}/slots", "Make slots by pattern (form: office, site, service, group, "
          "first, last, days, start, end, every, capacity, publish); audited", create,
          access="ward_staff", content_type="text/html"),
    Route("GET", f"{PATH}.csv", "Reservations of an office and dates as CSV (?office=&from=&to="
          "&columns=…&encoding=utf-8-sig|cp932), contacts included; audited as an export",
          export, access="ward_staff", content_type="text/csv"),
    Route("POST", f"{PATH}/import", "Import the reservation-ID file (multipart {file, "
          "id_column, office_column}; the CSRF token in the URL: ?csrf=); all or nothing; "
          "audited", import_file, access="ward_staff", content_type="text/html"),
    Route("POST", f"{PATH}/erase", "Erase the data of chosen reservation IDs (form {csrf, ids, "
          "confirm}): first shows what, then erases; audited", erase, access="ward_staff",
          content_type="text/html"),
    Route("POST", f"{PATH}/slot", "Close or resize a slot (form {slot, capacity, closed, "
          "confirm}); first shows the reservations affected, nobody is cancelled; audited",
          change, access="ward_staff", content_type="text/html"),
)
