"""The edge HTTP API: one endpoint per queue command, the state as JSON, errors as JSON.

Every route is declared once in ``ROUTES`` with its body model and access level, which also
produces the OpenAPI document, so the document cannot drift from what the server accepts. The
errors, the body reading and the document come from the HTTP kit the hub uses too
(``edge.httpkit``).
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from time import time
from typing import Any

from aiohttp import web
from pydantic import BaseModel

from edge.domain import commands as c
from edge.domain.views import snapshot, stats_view, ticket_view
from edge.httpkit import ApiError, Handler, RouteSpec, json_response, read_json
from edge.httpkit import errors_as_json as _errors_as_json
from edge.store.store import StoreError
from edge.store.writer import Outcome, Writer
from edge.sync.reservations import ReservationBook
from edge.sync.staff import OPERATOR_ROLES, StaffBook
from edge.web.access import Level, bearer, caller, check, declare
from edge.web.auth import Operator, Sessions, check_pin
from edge.web.schemas import (
    CheckInBody,
    IssueBody,
    LoginBody,
    MenuBody,
    NumberBody,
    TicketRefBody,
    TransferBody,
)

_LOGGER = logging.getLogger(__name__)

WRITER: web.AppKey[Writer] = web.AppKey("writer", Writer)
# the device manager when the site has devices: kiosks learn whether their ticket printed
DEVICES: web.AppKey[Any] = web.AppKey("devices", object)
SESSIONS: web.AppKey[Sessions] = web.AppKey("sessions", Sessions)
# staff allowed at this site, pushed by the hub (edge/sync/staff.py)
STAFF: web.AppKey[StaffBook] = web.AppKey("staff", StaffBook)
RESERVATIONS: web.AppKey[ReservationBook] = web.AppKey("reservations", ReservationBook)

__all__ = ["DEVICES", "RESERVATIONS", "ROUTES", "SESSIONS", "STAFF", "WRITER", "ApiError",
           "Route", "add_routes", "errors_as_json", "json_response"]

# every failure as ``{"error": {code, message, message_ja}}``, never a bare 500; the local
# database refusing a write is the one expected fault (503: retry later, nothing changed)
errors_as_json = _errors_as_json(
    internal=ApiError(500, "internal", "Internal error; nothing was changed",
                      "内部エラーです。変更は行われていません"),
    failures={(StoreError,): ApiError(503, "storage_unavailable",
                                      "The local database cannot write now",
                                      "ローカルデータベースに書き込めません")},
    logger=_LOGGER)


def _result(outcome: Outcome, created: bool = False,
            extra: dict[str, Any] | None = None) -> web.Response:
    if outcome.refused is not None:
        r = outcome.refused
        raise ApiError(r.status, r.code, r.message, r.message_ja)
    return json_response(
        {"events": [{"seq": e.seq, "type": e.type} for e in outcome.events],
         "ticket": outcome.ticket, **(extra or {})},
        status=201 if created else 200,
    )


async def _print_outcome(request: web.Request, cmd: c.Command, outcome: Outcome) -> Any:
    """After a kiosk's ticket is committed: did its printer print it? (The number is valid
    either way; the kiosk shows it on screen when the answer is no.)"""
    if not isinstance(cmd, c.Issue) or cmd.kiosk is None or outcome.ticket is None:
        return None
    manager = request.app.get(DEVICES)
    if manager is None or cmd.kiosk not in manager.printers:
        return {"printed": False, "printer": None, "reason": "no_printer",
                "message": {"en": "This kiosk has no printer",
                            "ja": "この発券機にはプリンタがありません"}}
    return await manager.print_result(outcome.ticket["id"], cmd.kiosk)


@dataclass(frozen=True)
class Route(RouteSpec):
    """An edge route: a queue command (``build`` makes it from the request and its body, the
    writer runs it) or a read (``handler``). ``status=201``: the command creates a ticket."""

    # who may call it (edge/web/access.py): no default, every route says so
    access: Level = field(kw_only=True)
    body: type[BaseModel] | None = field(default=None, kw_only=True)
    build: Callable[[web.Request, Any], c.Command] | None = field(default=None, kw_only=True)
    handler: Handler | None = field(default=None, kw_only=True)

    @property
    def created(self) -> bool:
        return self.status == 201


def authorize(request: web.Request, level: Level) -> Operator | None:
    """Refuse the request unless ``level`` allows its caller; return the caller's session."""
    who = caller(request, request.app[SESSIONS])
    denied = check(level, request.app[WRITER].config, who,
                   counter=request.match_info.get("counter"), remote=request.remote)
    if denied is not None:
        raise ApiError(denied.status, denied.code, denied.message, denied.message_ja)
    return who


def _escalated(route: Route, cmd: c.Command) -> Level:
    """A plain kiosk ticket is a kiosk's job; priority, reservation and web tickets are staff's
    (otherwise any device on the LAN could jump the queue). A reservation ticket for a booking
    the hub pushed (``reservation`` set only by ``_check_in``) is the kiosk's job again."""
    if isinstance(cmd, c.Issue) and (cmd.priority or cmd.channel != "kiosk") \
            and cmd.reservation is None:
        return "staff"
    return route.access


def _check_in(request: web.Request, body: CheckInBody) -> c.Command:
    """A scanned QR: a web ticket's token checks that ticket in; else a booking pushed by the
    hub for today (``edge/sync/reservations.py``) gets its priority ticket at this kiosk. An
    unknown token is left to ``CheckIn``, which refuses it with the usual answer."""
    writer = request.app[WRITER]
    if writer.read(lambda s: body.token in s.tokens):
        return c.CheckIn(body.token, body.kiosk)
    today = writer.read(lambda s: s.day) or writer.clock.now().date().isoformat()
    booking = request.app[RESERVATIONS].find(body.token, today)
    if booking is None:
        return c.CheckIn(body.token, body.kiosk)
    return c.Issue(booking.service, "reservation", kiosk=body.kiosk, reservation=booking.key)


def _level(request: web.Request, route: Route, cmd: c.Command) -> Level:
    """An open site (``access = "open"``) keeps the earlier rule: no escalation."""
    return route.access if request.app[WRITER].config.access == "open" else _escalated(route, cmd)


async def _run(route: Route, request: web.Request) -> web.Response:
    who = authorize(request, route.access)
    if route.body is None:
        await request.read()  # enforces client_max_size (413) on body-less commands too
        body = None
    else:
        body = await read_json(request, route.body)
    assert route.build is not None
    cmd = route.build(request, body)
    level = _level(request, route, cmd)
    if level != route.access:
        who = authorize(request, level)
    actor = None if who is None else who.staff
    outcome = await request.app[WRITER].execute(cmd, actor=actor)
    printed = await _print_outcome(request, cmd, outcome)
    return _result(outcome, created=route.created,
                   extra=None if printed is None else {"print": printed})


def _cid(request: web.Request) -> str:
    return request.match_info["counter"]


async def get_state(request: web.Request) -> web.Response:
    w = request.app[WRITER]
    state = w.read(lambda s: snapshot(s, w.clock.now()))
    manager = request.app.get(DEVICES)
    state["devices"] = [] if manager is None else manager.board.views()
    return json_response(state)


async def get_stats(request: web.Request) -> web.Response:
    return json_response(request.app[WRITER].read(stats_view))


async def get_ticket(request: web.Request) -> web.Response:
    token = request.match_info["token"]
    w = request.app[WRITER]

    def find(s: Any) -> dict[str, Any] | None:
        tid = s.tokens.get(token)
        return None if tid is None else ticket_view(s, s.tickets[tid])

    view = w.read(find)
    if view is None:
        raise ApiError(404, "unknown_ticket", "No ticket of today has this token",
                       "本日の番号札にこのコードはありません")
    return json_response(view)


async def get_health(request: web.Request) -> web.Response:
    w = request.app[WRITER]
    out = w.read(lambda s: {"ok": True, "site": s.config.site, "seq": s.seq,
                            "day": s.day, "day_open": s.day_open})
    manager = request.app.get(DEVICES)
    out["devices"] = "ok" if manager is None else manager.board.worst()
    return json_response(out)


async def get_ready(request: web.Request) -> web.Response:
    """Readiness: the writer thread takes work and the database answers within 2 s. The hub
    link is not a condition: the edge serves its counters offline."""
    try:
        ok = await asyncio.wait_for(request.app[WRITER].responsive(), timeout=2.0)
        check = "ok" if ok else "error"
    except TimeoutError:
        check = "timeout"
    except Exception:  # any failure of the store is "not ready", said, never a 500
        _LOGGER.exception("readiness check failed")
        check = "error"
    ready = check == "ok"
    return json_response({"ready": ready, "checks": {"store": check}},
                         status=200 if ready else 503)


async def get_devices(request: web.Request) -> web.Response:
    manager = request.app.get(DEVICES)
    return json_response({"devices": [] if manager is None else manager.board.views()})


_TOO_MANY = ApiError(429, "too_many_attempts", "Too many failed sign-ins; wait a minute",
                    "ログインの失敗が続いたため、1分ほどお待ちください")


async def login(request: web.Request) -> web.Response:
    """Open a counter's panel: login ID and password (accounts pushed by the hub, checked here,
    so it works while the hub is down), or the counter's PIN (the fallback)."""
    cid = request.match_info["counter"]
    body = await read_json(request, LoginBody)
    config = request.app[WRITER].config
    counter = config.counters.get(cid)
    if counter is None:
        raise ApiError(404, "unknown_counter", f"Unknown counter {cid!r}",
                       f"窓口 {cid!r} は存在しません")
    sessions = request.app[SESSIONS]
    if body.login is not None:
        if sessions.locked(cid):
            raise _TOO_MANY
        assert body.password is not None
        found = await asyncio.to_thread(request.app[STAFF].verify, body.login, body.password)
        if found is None or not found.roles & OPERATOR_ROLES:
            sessions.failed(cid)
            _LOGGER.info("counter %s: failed staff sign-in", cid)  # never the ID or password
            raise ApiError(403, "wrong_login", "Wrong login ID or password, or not allowed here",
                           "ログインIDかパスワードが違うか、この窓口を使う権限がありません")
        token, end = sessions.open(cid, found.login, found.roles)
        staff: str | None = found.login
    elif counter.pin_hash is None:
        if config.access != "open":
            raise ApiError(403, "staff_login_required",
                           "This counter has no PIN: sign in with your login ID",
                           "この窓口には暗証番号がありません。ログインIDでログインしてください")
        token, end = sessions.open(cid)  # an open site: the panel is open to the LAN
        staff = None
    else:
        if sessions.locked(cid):
            raise _TOO_MANY
        if body.pin is None or not check_pin(body.pin, counter.pin_hash):
            sessions.failed(cid)
            _LOGGER.info("counter %s: wrong PIN", cid)  # never the PIN itself
            raise ApiError(403, "wrong_pin", "Wrong PIN", "暗証番号が違います")
        token, end = sessions.open(cid)
        staff = None
    return json_response({"session": token, "counter": cid, "staff": staff,
                          "expires_in_s": round(end - time())})


async def logout(request: web.Request) -> web.Response:
    await request.read()
    request.app[SESSIONS].close(bearer(request))
    return json_response({"ok": True})


def _counter_cmd(cls: Callable[[str], c.Command]) -> Callable[[web.Request, Any], c.Command]:
    return lambda r, _b: cls(_cid(r))


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/health", "Liveness and current seq", handler=get_health, access="public"),
    Route("GET", "/api/ready", "Readiness: 200 when the store answers within 2 s, else 503",
          handler=get_ready, access="public"),
    Route("GET", "/api/state", "Whole queue state (what screens show)", handler=get_state,
          access="public"),
    Route("GET", "/api/devices", "Every device's health (ok, degraded, offline, error)",
          handler=get_devices, access="public"),
    Route("GET", "/api/stats", "Today's statistics (S1): ward staff of this site only",
          handler=get_stats, access="site_staff"),
    Route("GET", "/api/tickets/{token}", "A ticket by its QR token", handler=get_ticket,
          access="public"),
    Route("POST", "/api/tickets", "Issue a ticket (kiosk, web, reservation)", body=IssueBody,
          build=lambda r, b: c.Issue(b.service, b.channel, b.lang, b.priority, b.kiosk),
          status=201, access="kiosk"),  # priority, reservation, web: "staff" (_escalated)
    Route("POST", "/api/tickets/check-in",
          "Check in a web ticket or reservation by its scanned QR token", body=CheckInBody,
          build=_check_in, access="kiosk"),
    Route("POST", "/api/kiosk/menu", "Switch the kiosk menu (null: back to the schedule)",
          body=MenuBody, build=lambda r, b: c.SelectMenu(b.menu), access="staff"),
    Route("POST", "/api/counters/{counter}/login",
          "Open a counter's panel: login ID and password, or its PIN",
          body=LoginBody, handler=login, access="public"),
    Route("POST", "/api/counters/{counter}/logout", "End an operator session",
          handler=logout, access="public"),
    Route("POST", "/api/tickets/cancel", "Cancel a number not yet called", body=TicketRefBody,
          build=lambda r, b: c.Cancel(b.number, b.token), access="staff"),
    Route("POST", "/api/counters/{counter}/open", "Open a counter",
          build=_counter_cmd(c.OpenCounter), access="operator"),
    Route("POST", "/api/counters/{counter}/close", "Close a counter",
          build=_counter_cmd(c.CloseCounter), access="operator"),
    Route("POST", "/api/counters/{counter}/call-next", "Call the next ticket",
          build=_counter_cmd(c.CallNext), access="operator"),
    Route("POST", "/api/counters/{counter}/recall", "Call the current ticket again",
          build=_counter_cmd(c.Recall), access="operator"),
    Route("POST", "/api/counters/{counter}/call", "Call a given number", body=NumberBody,
          build=lambda r, b: c.CallNumber(_cid(r), b.number), access="operator"),
    Route("POST", "/api/counters/{counter}/hold", "Put the current ticket on hold",
          build=_counter_cmd(c.Hold), access="operator"),
    Route("POST", "/api/counters/{counter}/call-held", "Call a held number", body=NumberBody,
          build=lambda r, b: c.CallHeld(_cid(r), b.number), access="operator"),
    Route("POST", "/api/counters/{counter}/absent", "Mark the current ticket absent",
          build=_counter_cmd(c.MarkAbsent), access="operator"),
    Route("POST", "/api/counters/{counter}/clear-absence",
          "Clear an absence by number or scanned token and call it again", body=TicketRefBody,
          build=lambda r, b: c.ClearAbsence(_cid(r), b.number, b.token), access="operator"),
    Route("POST", "/api/counters/{counter}/cancel", "Cancel an uncalled number at a counter",
          body=TicketRefBody, build=lambda r, b: c.Cancel(b.number, b.token, _cid(r)),
          access="operator"),
    Route("POST", "/api/counters/{counter}/finish", "Finish the current ticket",
          build=_counter_cmd(c.Finish), access="operator"),
    Route("POST", "/api/counters/{counter}/transfer",
          "Transfer the current ticket to a service or counter, keeping its number",
          body=TransferBody, build=lambda r, b: c.Transfer(_cid(r), b.service, b.counter),
          access="operator"),
    Route("POST", "/api/day/close", "Close the business day", build=lambda r, b: c.CloseDay(),
          access="site_staff"),
)


def add_routes(app: web.Application) -> None:
    for route in ROUTES:
        declare(app, route.method, route.path, route.access)
        if route.handler is not None and route.access == "public":
            app.router.add_route(route.method, route.path, route.handler)
        elif route.handler is not None:
            async def read(request: web.Request, route: Route = route) -> web.StreamResponse:
                authorize(request, route.access)
                assert route.handler is not None
                return await route.handler(request)
            app.router.add_route(route.method, route.path, read)
        else:
            async def handler(request: web.Request, route: Route = route) -> web.Response:
                return await _run(route, request)
            app.router.add_route(route.method, route.path, handler)
