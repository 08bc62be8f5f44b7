"""The edge HTTP API: one endpoint per queue command, the state as JSON, errors as JSON.

Every route is declared once in ``ROUTES`` with its body model, which also produces the OpenAPI
document, so the document cannot drift from what the server accepts.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from time import time
from typing import Any

from aiohttp import web
from pydantic import BaseModel, ValidationError

from edge.domain import commands as c
from edge.domain.views import snapshot, stats_view, ticket_view
from edge.store.store import StoreError
from edge.store.writer import Outcome, Writer
from edge.web.auth import Sessions, check_pin
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

Handler = Callable[[web.Request], Awaitable[web.StreamResponse]]


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, message_ja: str) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.message_ja = status, code, message, message_ja


def error_response(status: int, code: str, message: str, message_ja: str) -> web.Response:
    return json_response(
        {"error": {"code": code, "message": message, "message_ja": message_ja}}, status=status
    )


def json_response(data: Any, status: int = 200) -> web.Response:
    """JSON as UTF-8 text (Japanese stays readable, and ~3x smaller than \\u escapes)."""
    return web.Response(text=json.dumps(data, ensure_ascii=False), status=status,
                        content_type="application/json")


_HTTP_ERRORS = {
    404: ("not_found", "ページまたはAPIが見つかりません"),
    405: ("method_not_allowed", "このメソッドは使えません"),
    413: ("too_large", "リクエストが大きすぎます"),
}


@web.middleware
async def errors_as_json(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every failure becomes ``{"error": {code, message, message_ja}}``; never a bare 500."""
    try:
        return await handler(request)
    except ApiError as exc:
        return error_response(exc.status, exc.code, exc.message, exc.message_ja)
    except StoreError:
        _LOGGER.exception("storage failure")
        return error_response(503, "storage_unavailable", "The local database cannot write now",
                              "ローカルデータベースに書き込めません")
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        code, ja = _HTTP_ERRORS.get(exc.status, ("http_error", "リクエストを処理できません"))
        response = error_response(exc.status, code, exc.reason, ja)
        if "Allow" in exc.headers:  # a 405 must say which methods are allowed
            response.headers["Allow"] = exc.headers["Allow"]
        return response
    except Exception:
        _LOGGER.exception("unhandled error on %s %s", request.method, request.path)
        return error_response(500, "internal", "Internal error; nothing was changed",
                              "内部エラーです。変更は行われていません")


async def _body(request: web.Request, model: type[BaseModel]) -> Any:
    raw = await request.read()
    try:
        data = json.loads(raw) if raw.strip() else {}
    except (ValueError, RecursionError) as exc:  # RecursionError: absurdly deep nesting
        raise ApiError(400, "bad_json", f"Body is not valid JSON: {exc}",
                       "本文が正しいJSONではありません") from exc
    if not isinstance(data, dict):
        raise ApiError(400, "bad_json", "Body must be a JSON object", "本文はJSONオブジェクトです")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        parts = [f"{'.'.join(map(str, e['loc'])) or 'body'}: {e['msg']}" for e in exc.errors()]
        raise ApiError(422, "invalid_input", "; ".join(parts),
                       "入力が不正です: " + "; ".join(parts)) from exc


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
class Route:
    method: str
    path: str
    summary: str
    body: type[BaseModel] | None
    build: Callable[[web.Request, Any], c.Command] | None = None  # command routes
    handler: Handler | None = None  # read routes
    created: bool = False
    staff: bool = False  # needs an operator session when the site uses PINs


def _authorize(request: web.Request, route: Route) -> None:
    """Counter commands need that counter's session when the counter has a PIN; switching the
    kiosk menu needs any operator session when any counter has one."""
    config = request.app[WRITER].config
    cid = request.match_info.get("counter")
    if cid is not None:
        counter = config.counters.get(cid)
        if counter is None or counter.pin_hash is None:
            return  # unknown counters are refused by the domain with a clear 404
        allowed = {cid}
    elif route.staff and any(k.pin_hash for k in config.counters.values()):
        allowed = set(config.counters)
    else:
        return
    auth = request.headers.get("Authorization", "")
    token = auth.removeprefix("Bearer ").strip() if auth.startswith("Bearer ") else ""
    if request.app[SESSIONS].counter_of(token) not in allowed:
        raise ApiError(401, "login_required", "Open the counter with its PIN first",
                       "先に暗証番号で窓口を開いてください")


async def _run(route: Route, request: web.Request) -> web.Response:
    _authorize(request, route)
    if route.body is None:
        await request.read()  # enforces client_max_size (413) on body-less commands too
        body = None
    else:
        body = await _body(request, route.body)
    assert route.build is not None
    cmd = route.build(request, body)
    outcome = await request.app[WRITER].execute(cmd)
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


async def get_devices(request: web.Request) -> web.Response:
    manager = request.app.get(DEVICES)
    return json_response({"devices": [] if manager is None else manager.board.views()})


async def login(request: web.Request) -> web.Response:
    cid = request.match_info["counter"]
    body = await _body(request, LoginBody)
    counter = request.app[WRITER].config.counters.get(cid)
    if counter is None:
        raise ApiError(404, "unknown_counter", f"Unknown counter {cid!r}",
                       f"窓口 {cid!r} は存在しません")
    sessions = request.app[SESSIONS]
    if counter.pin_hash is None:
        token, end = sessions.open(cid)  # no PIN configured: the panel is open to the LAN
    else:
        if sessions.locked(cid):
            raise ApiError(429, "too_many_attempts", "Too many wrong PINs; wait a minute",
                           "暗証番号の誤りが続いたため、1分ほどお待ちください")
        if not check_pin(body.pin, counter.pin_hash):
            sessions.failed(cid)
            _LOGGER.info("counter %s: wrong PIN", cid)  # never the PIN itself
            raise ApiError(403, "wrong_pin", "Wrong PIN", "暗証番号が違います")
        token, end = sessions.open(cid)
    return json_response({"session": token, "counter": cid, "expires_in_s": round(end - time())})


async def logout(request: web.Request) -> web.Response:
    await request.read()
    auth = request.headers.get("Authorization", "")
    request.app[SESSIONS].close(auth.removeprefix("Bearer ").strip())
    return json_response({"ok": True})


def _counter_cmd(cls: Callable[[str], c.Command]) -> Callable[[web.Request, Any], c.Command]:
    return lambda r, _b: cls(_cid(r))


ROUTES: tuple[Route, ...] = (
    Route("GET", "/api/health", "Liveness and current seq", None, handler=get_health),
    Route("GET", "/api/state", "Whole queue state (what screens show)", None, handler=get_state),
    Route("GET", "/api/devices", "Every device's health (ok, degraded, offline, error)", None,
          handler=get_devices),
    Route("GET", "/api/stats", "Today's statistics (S1)", None, handler=get_stats),
    Route("GET", "/api/tickets/{token}", "A ticket by its QR token", None, handler=get_ticket),
    Route("POST", "/api/tickets", "Issue a ticket (kiosk, web, reservation)", IssueBody,
          lambda r, b: c.Issue(b.service, b.channel, b.lang, b.priority, b.kiosk), created=True),
    Route("POST", "/api/tickets/check-in",
          "Check in a web ticket or reservation by its scanned QR token", CheckInBody,
          lambda r, b: c.CheckIn(b.token, b.kiosk)),
    Route("POST", "/api/kiosk/menu", "Switch the kiosk menu (null: back to the schedule)",
          MenuBody, lambda r, b: c.SelectMenu(b.menu), staff=True),
    Route("POST", "/api/counters/{counter}/login", "Open a counter's panel with its PIN",
          LoginBody, handler=login),
    Route("POST", "/api/counters/{counter}/logout", "End an operator session", None,
          handler=logout),
    Route("POST", "/api/tickets/cancel", "Cancel a number not yet called", TicketRefBody,
          lambda r, b: c.Cancel(b.number, b.token)),
    Route("POST", "/api/counters/{counter}/open", "Open a counter", None,
          _counter_cmd(c.OpenCounter)),
    Route("POST", "/api/counters/{counter}/close", "Close a counter", None,
          _counter_cmd(c.CloseCounter)),
    Route("POST", "/api/counters/{counter}/call-next", "Call the next ticket", None,
          _counter_cmd(c.CallNext)),
    Route("POST", "/api/counters/{counter}/recall", "Call the current ticket again", None,
          _counter_cmd(c.Recall)),
    Route("POST", "/api/counters/{counter}/call", "Call a given number", NumberBody,
          lambda r, b: c.CallNumber(_cid(r), b.number)),
    Route("POST", "/api/counters/{counter}/hold", "Put the current ticket on hold", None,
          _counter_cmd(c.Hold)),
    Route("POST", "/api/counters/{counter}/call-held", "Call a held number", NumberBody,
          lambda r, b: c.CallHeld(_cid(r), b.number)),
    Route("POST", "/api/counters/{counter}/absent", "Mark the current ticket absent", None,
          _counter_cmd(c.MarkAbsent)),
    Route("POST", "/api/counters/{counter}/clear-absence",
          "Clear an absence by number or scanned token and call it again", TicketRefBody,
          lambda r, b: c.ClearAbsence(_cid(r), b.number, b.token)),
    Route("POST", "/api/counters/{counter}/cancel", "Cancel an uncalled number at a counter",
          TicketRefBody, lambda r, b: c.Cancel(b.number, b.token, _cid(r))),
    Route("POST", "/api/counters/{counter}/finish", "Finish the current ticket", None,
          _counter_cmd(c.Finish)),
    Route("POST", "/api/counters/{counter}/transfer",
          "Transfer the current ticket to a service or counter, keeping its number",
          TransferBody, lambda r, b: c.Transfer(_cid(r), b.service, b.counter)),
    Route("POST", "/api/day/close", "Close the business day", None, lambda r, b: c.CloseDay()),
)


def add_routes(app: web.Application) -> None:
    for route in ROUTES:
        if route.handler is not None:
            app.router.add_route(route.method, route.path, route.handler)
        else:
            async def handler(request: web.Request, route: Route = route) -> web.Response:
                return await _run(route, request)
            app.router.add_route(route.method, route.path, handler)
