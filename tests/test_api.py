"""The edge HTTP API over a real TCP socket: every route, bad input, websocket push, OpenAPI.

Each refusal is checked three ways: the status, the ``{"error": {code, message, message_ja}}``
body, and that nothing changed (``seq`` of ``GET /api/state`` and the events row count in the
database are the same before and after).
"""

from __future__ import annotations

import importlib.util
import json
import re
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import free_port
from support import morning, small_site

from edge.app import build_edge, start_edge
from edge.domain.clock import ManualClock
from edge.web.api import ROUTES

DAY = "2026-11-21"


@dataclass
class Api:
    session: aiohttp.ClientSession
    db: Path
    clock: ManualClock
    tokens: set[str] = field(default_factory=set)  # every token the server handed out

    async def request(self, method: str, path: str, body: Any = None, *,
                      raw: bytes | None = None) -> tuple[int, Any, aiohttp.ClientResponse]:
        kwargs: dict[str, Any] = {}
        if raw is not None:
            kwargs["data"] = raw
            kwargs["headers"] = {"Content-Type": "application/json"}
        elif body is not None:
            kwargs["json"] = body
        async with self.session.request(method, path, **kwargs) as resp:
            text = await resp.text()
            data = json.loads(text) if text else None
            if isinstance(data, dict) and isinstance(data.get("ticket"), dict):
                token = data["ticket"].get("token")
                if token:
                    self.tokens.add(token)
            return resp.status, data, resp

    async def post(self, path: str, body: Any = None, status: int = 200) -> dict[str, Any]:
        got, data, _ = await self.request("POST", path, body)
        assert got == status, (path, body, got, data)
        assert isinstance(data, dict)
        return data

    async def get(self, path: str, status: int = 200) -> Any:
        got, data, _ = await self.request("GET", path)
        assert got == status, (path, got, data)
        return data

    async def issue(self, service: str = "A", **extra: Any) -> dict[str, Any]:
        data = await self.post("/api/tickets", {"service": service, **extra}, status=201)
        ticket: dict[str, Any] = data["ticket"]
        return ticket

    async def seq(self) -> int:
        state = await self.get("/api/state")
        return int(state["seq"])

    def event_count(self) -> int:
        with sqlite3.connect(self.db) as conn:
            return int(conn.execute("SELECT count(*) FROM events").fetchone()[0])

    def event_data(self, seq: int) -> dict[str, Any]:
        with sqlite3.connect(self.db) as conn:
            row = conn.execute("SELECT data FROM events WHERE seq = ?", (seq,)).fetchone()
        data: dict[str, Any] = json.loads(row[0])
        return data

    async def refused(self, method: str, path: str, body: Any = None, *, raw: bytes | None = None,
                      status: int, code: str | None) -> dict[str, Any]:
        """Send a request that must fail, check the error body, and that nothing changed."""
        seq, count = await self.seq(), self.event_count()
        got, data, resp = await self.request(method, path, body, raw=raw)
        assert got == status, (method, path, body, got, data)
        assert resp.content_type == "application/json"
        assert isinstance(data, dict), data
        assert set(data) == {"error"}, data
        err = data["error"]
        assert set(err) == {"code", "message", "message_ja"}, err
        assert all(isinstance(v, str) and v for v in err.values()), err
        if code is not None:
            assert err["code"] == code, err
        assert await self.seq() == seq, "a refused request changed the state"
        assert self.event_count() == count, "a refused request wrote events"
        return err


@pytest.fixture
async def api(tmp_path: Path) -> AsyncIterator[Api]:
    clock = ManualClock(morning())
    db = tmp_path / "e.db"
    edge = build_edge(small_site(), db, clock)
    port = free_port()
    runner = await start_edge(edge, "127.0.0.1", port)
    timeout = aiohttp.ClientTimeout(total=10)
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}", timeout=timeout) as session:
            yield Api(session, db, clock)
    finally:
        await runner.cleanup()


def types(result: dict[str, Any]) -> list[str]:
    return [e["type"] for e in result["events"]]


# --- commands that succeed -------------------------------------------------------------------

async def test_issue_answers_201_with_token_and_ticket_is_readable_by_token(api: Api) -> None:
    result = await api.post("/api/tickets", {"service": "A"}, status=201)
    assert types(result) == ["DayOpened", "TicketIssued"]
    assert [e["seq"] for e in result["events"]] == [1, 2]
    t = result["ticket"]
    assert (t["number"], t["service"], t["state"], t["stage"]) == (1, "A", "waiting", 1)
    assert (t["channel"], t["lang"], t["priority"], t["day"]) == ("kiosk", "ja", False, DAY)
    assert re.fullmatch(r"[A-Za-z0-9_-]{16,64}", t["token"])
    assert t["ticket_kind"] == "two-part"

    b = await api.issue("B", channel="web", lang="en", priority=True)
    assert (b["number"], b["channel"], b["lang"], b["priority"]) == (201, "web", "en", True)
    # a reservation ticket only for a booking (scanned at the kiosk): never by this path
    refused = await api.post("/api/tickets", {"service": "B", "channel": "reservation"},
                             status=422)
    assert refused["error"]["code"] == "reservation_required"
    r = await api.issue("B", priority=True)
    assert (r["number"], r["priority"]) == (202, True)

    view = await api.get(f"/api/tickets/{t['token']}")
    assert view["id"] == t["id"]
    assert view["number"] == 1
    assert view["state"] == "waiting"
    assert "token" not in view
    assert view["ahead"] == 0
    assert view["estimate"] is None
    await api.post("/api/counters/1/open")
    view = await api.get(f"/api/tickets/{r['token']}")
    assert view["ahead"] == 1  # the priority web ticket 201 was issued first
    assert view["estimate"]["low_s"] <= view["estimate"]["high_s"]
    assert api.event_count() == 5


async def test_cancel_by_number_by_token_and_at_a_counter(api: Api) -> None:
    t1, t2, t3 = await api.issue(), await api.issue(), await api.issue("B")
    result = await api.post("/api/tickets/cancel", {"number": t1["number"]})
    assert types(result) == ["TicketCancelled"]
    assert result["ticket"]["state"] == "cancelled"
    result = await api.post("/api/tickets/cancel", {"token": t2["token"]})
    assert result["ticket"]["id"] == t2["id"]
    assert result["ticket"]["state"] == "cancelled"
    assert (await api.get(f"/api/tickets/{t2['token']}"))["state"] == "cancelled"

    result = await api.post("/api/counters/2/cancel", {"number": 201})
    assert result["ticket"]["id"] == t3["id"]
    assert result["ticket"]["state"] == "cancelled"
    assert api.event_data(result["events"][0]["seq"])["counter"] == "2"
    t4 = await api.issue("B")
    result = await api.post("/api/counters/1/cancel", {"token": t4["token"]})
    assert result["ticket"]["number"] == 202
    state = await api.get("/api/state")
    assert all(s["waiting"] == 0 for s in state["services"])


async def test_counter_operations_in_sequence(api: Api) -> None:
    t1, t2 = await api.issue(), await api.issue("B")
    assert types(await api.post("/api/counters/1/open")) == ["CounterOpened"]

    result = await api.post("/api/counters/1/call-next")
    assert types(result) == ["TicketCalled"]
    assert (result["ticket"]["number"], result["ticket"]["state"]) == (1, "called")
    assert result["ticket"]["counter"] == "1"
    assert result["ticket"]["calls"] == 1

    result = await api.post("/api/counters/1/recall")
    assert types(result) == ["TicketRecalled"]
    assert result["ticket"]["calls"] == 2

    result = await api.post("/api/counters/1/hold")
    assert types(result) == ["TicketHeld"]
    assert result["ticket"]["state"] == "held"
    state = await api.get("/api/state")
    assert state["held"] == [{"number": 1, "service": "A", "counter": "1", "ticket": t1["id"]}]
    assert next(c for c in state["counters"] if c["id"] == "1")["held"] == [1]

    result = await api.post("/api/counters/1/call-held", {"number": 1})
    assert types(result) == ["TicketCalled"]
    assert result["ticket"]["state"] == "called"

    result = await api.post("/api/counters/1/absent")
    assert types(result) == ["TicketAbsent"]
    assert result["ticket"]["state"] == "absent"
    assert [a["number"] for a in (await api.get("/api/state"))["absent"]] == [1]

    result = await api.post("/api/counters/1/clear-absence", {"number": 1})
    assert types(result) == ["TicketCalled"]
    assert result["ticket"]["state"] == "called"
    await api.post("/api/counters/1/absent")
    result = await api.post("/api/counters/1/clear-absence", {"token": t1["token"]})
    assert result["ticket"]["id"] == t1["id"]
    assert result["ticket"]["state"] == "called"

    # calling a given number while one is at the counter finishes that one first
    result = await api.post("/api/counters/1/call", {"number": t2["number"]})
    assert types(result) == ["TicketFinished", "TicketCalled"]
    assert result["ticket"]["number"] == 201
    assert (await api.get(f"/api/tickets/{t1['token']}"))["state"] == "finished"

    result = await api.post("/api/counters/1/finish")
    assert types(result) == ["TicketFinished"]
    assert result["ticket"]["state"] == "finished"
    result = await api.post("/api/counters/1/close")
    assert types(result) == ["CounterClosed"]
    assert result["ticket"] is None
    state = await api.get("/api/state")
    assert not any(c["open"] for c in state["counters"])
    assert state["calling"] == []
    assert state["seq"] == api.event_count()


async def test_transfer_by_service_and_by_counter_keeps_the_number(api: Api) -> None:
    t = await api.issue("A")
    for cid in ("1", "2", "3"):
        await api.post(f"/api/counters/{cid}/open")
    await api.post("/api/counters/1/call-next")

    result = await api.post("/api/counters/1/transfer", {"service": "C"})
    assert types(result) == ["TicketTransferred"]
    moved = result["ticket"]
    assert (moved["id"], moved["number"], moved["service"]) == (t["id"], 1, "C")
    assert (moved["stage"], moved["state"], moved["origin_service"]) == (2, "waiting", "A")
    state = await api.get("/api/state")
    c_row = next(s for s in state["services"] if s["code"] == "C")
    assert c_row["waiting"] == 1
    assert c_row["second_wait"] == 1

    result = await api.post("/api/counters/3/call-next")
    assert result["ticket"]["number"] == 1
    assert result["ticket"]["counter"] == "3"
    result = await api.post("/api/counters/3/transfer", {"counter": "2"})
    moved = result["ticket"]
    assert (moved["service"], moved["target_counter"], moved["stage"]) == ("B", "2", 3)
    data = api.event_data(result["events"][0]["seq"])
    assert (data["to_service"], data["to_counter"], data["number"]) == ("B", "2", 1)

    # named to counter 2: counter 1 (which serves B too) must not take it
    await api.refused("POST", "/api/counters/1/call-next", status=409, code="queue_empty")
    result = await api.post("/api/counters/2/call-next")
    assert result["ticket"]["number"] == 1
    assert result["ticket"]["target_counter"] is None
    result = await api.post("/api/counters/2/transfer", {"service": "A", "counter": "1"})
    assert (result["ticket"]["service"], result["ticket"]["target_counter"]) == ("A", "1")
    assert (await api.post("/api/counters/1/call-next"))["ticket"]["id"] == t["id"]
    await api.post("/api/counters/1/finish")
    view = await api.get(f"/api/tickets/{t['token']}")
    assert (view["state"], view["stage"], view["number"]) == ("finished", 4, 1)


async def test_day_close_expires_live_tickets_and_refuses_commands(api: Api) -> None:
    t = await api.issue("A")
    await api.post("/api/counters/1/open")
    result = await api.post("/api/day/close")
    assert types(result) == ["DayClosed"]
    assert api.event_data(result["events"][0]["seq"])["expired"] == [t["id"]]
    health = await api.get("/api/health")
    assert health == {"ok": True, "site": "test-site", "seq": 4, "day": DAY, "day_open": False,
                      "devices": "ok"}
    assert (await api.get(f"/api/tickets/{t['token']}"))["state"] == "expired"
    state = await api.get("/api/state")
    assert all(s["status"] == "closed" for s in state["services"])
    assert not any(c["open"] for c in state["counters"])
    await api.refused("POST", "/api/tickets", {"service": "A"}, status=409, code="day_closed")
    await api.refused("POST", "/api/counters/1/open", status=409, code="day_closed")
    await api.refused("POST", "/api/day/close", status=409, code="day_closed")


async def test_reads_state_stats_health(api: Api) -> None:
    health = await api.get("/api/health")
    assert health == {"ok": True, "site": "test-site", "seq": 0, "day": None, "day_open": False,
                      "devices": "ok"}
    t = await api.issue("A")
    await api.issue("B")
    await api.post("/api/counters/1/open")
    api.clock.advance(120)
    await api.post("/api/counters/1/call-next")
    api.clock.advance(300)
    await api.post("/api/counters/1/finish")

    health = await api.get("/api/health")
    assert health == {"ok": True, "site": "test-site", "seq": 6, "day": DAY, "day_open": True,
                      "devices": "ok"}
    stats = await api.get("/api/stats")
    assert stats["day"] == DAY
    assert stats["issued_total"] == 2
    a = stats["services"]["A"]
    assert (a["issued"], a["handled"], a["wait_avg_s"], a["handling_avg_s"]) == (1, 1, 120, 300)
    assert a["by_hour"] == {"08": 1}
    assert stats["services"]["C"]["issued"] == 0

    state = await api.get("/api/state")
    assert state["site"] == "test-site"
    assert state["day"] == DAY
    assert state["day_open"] is True
    assert state["seq"] == 6
    assert state["at"].startswith(f"{DAY}T08:37")
    assert [s["code"] for s in state["services"]] == ["A", "B", "C"]
    b = next(s for s in state["services"] if s["code"] == "B")
    assert (b["waiting"], b["issued"], b["open_counters"], b["next"]["number"]) == (1, 1, 1, 201)
    assert state["recent_calls"][0]["number"] == t["number"]
    assert state["calling"] == []


# --- refusals: right status, JSON error, nothing changed -------------------------------------

async def busy(api: Api) -> dict[str, dict[str, Any]]:
    """Day open; A1 called at counter 1, A2 and B201 waiting; 3 open and idle; 2 closed."""
    t = {"a1": await api.issue("A"), "a2": await api.issue("A"), "b1": await api.issue("B")}
    await api.post("/api/counters/1/open")
    await api.post("/api/counters/3/open")
    await api.post("/api/counters/1/call-next")
    return t


TOKEN_LIKE = "AAAAAAAAAAAAAAAAAAAAAA"
BAD_BODIES: list[tuple[str, str, Any, bytes | None, int, str]] = [
    # (method, path, json body, raw body, status, code)
    ("POST", "/api/tickets", {"service": "Z"}, None, 404, "unknown_service"),
    ("POST", "/api/tickets", {"service": "C"}, None, 422, "not_issuable"),
    ("POST", "/api/tickets", None, b"{", 400, "bad_json"),
    ("POST", "/api/tickets", None, b'{"service": "A"', 400, "bad_json"),
    ("POST", "/api/tickets", None, b'{"service": "A"}}', 400, "bad_json"),
    ("POST", "/api/tickets", None, b"\xff\xfe\x00garbage", 400, "bad_json"),
    ("POST", "/api/tickets", None, b"[" * 40_000, 400, "bad_json"),
    ("POST", "/api/tickets", None, b'["A"]', 400, "bad_json"),
    ("POST", "/api/tickets", None, b'"A"', 400, "bad_json"),
    ("POST", "/api/tickets", None, b"null", 400, "bad_json"),
    ("POST", "/api/tickets", None, b"42", 400, "bad_json"),
    ("POST", "/api/tickets", {}, None, 422, "invalid_input"),
    ("POST", "/api/tickets", {"service": "A", "extra": 1}, None, 422, "invalid_input"),
    ("POST", "/api/tickets", {"service": "A", "channel": "fax"}, None, 422, "invalid_input"),
    ("POST", "/api/tickets", {"service": "A", "priority": "yes"}, None, 422, "invalid_input"),
    ("POST", "/api/tickets", {"service": "A", "lang": "JA"}, None, 422, "invalid_input"),
    ("POST", "/api/tickets", {"service": ""}, None, 422, "invalid_input"),
    ("POST", "/api/tickets/cancel", {"number": 0}, None, 422, "invalid_input"),
    ("POST", "/api/tickets/cancel", {"number": 10000}, None, 422, "invalid_input"),
    ("POST", "/api/tickets/cancel", {"number": -1}, None, 422, "invalid_input"),
    ("POST", "/api/tickets/cancel", {"number": "2"}, None, 422, "invalid_input"),
    ("POST", "/api/tickets/cancel", {"number": 100}, None, 422, "number_out_of_range"),
    ("POST", "/api/tickets/cancel", {"number": 9999}, None, 422, "number_out_of_range"),
    ("POST", "/api/tickets/cancel", {}, None, 422, "invalid_input"),
    ("POST", "/api/tickets/cancel", {"number": 2, "token": TOKEN_LIKE}, None, 422,
     "invalid_input"),
    ("POST", "/api/tickets/cancel", {"token": "short"}, None, 422, "invalid_input"),
    ("POST", "/api/tickets/cancel", {"token": "bad token!"}, None, 422, "invalid_input"),
    ("POST", "/api/tickets/cancel", {"number": 2, "why": "x"}, None, 422, "invalid_input"),
    ("POST", "/api/tickets/cancel", {"number": 1}, None, 409, "already_called"),
    ("POST", "/api/tickets/cancel", {"number": 50}, None, 404, "unknown_ticket"),
    ("POST", "/api/tickets/cancel", {"token": TOKEN_LIKE}, None, 404, "unknown_ticket"),
    ("POST", "/api/counters/2/call-next", None, None, 409, "counter_closed"),
    ("POST", "/api/counters/2/finish", None, None, 409, "counter_closed"),
    ("POST", "/api/counters/2/close", None, None, 409, "counter_closed"),
    ("POST", "/api/counters/3/finish", None, None, 409, "no_current_ticket"),
    ("POST", "/api/counters/3/recall", None, None, 409, "no_current_ticket"),
    ("POST", "/api/counters/3/hold", None, None, 409, "no_current_ticket"),
    ("POST", "/api/counters/3/absent", None, None, 409, "no_current_ticket"),
    ("POST", "/api/counters/3/transfer", {"service": "A"}, None, 409, "no_current_ticket"),
    ("POST", "/api/counters/3/call-next", None, None, 409, "queue_empty"),
    ("POST", "/api/counters/1/open", None, None, 409, "counter_open"),
    ("POST", "/api/counters/1/close", None, None, 409, "counter_busy"),
    ("POST", "/api/counters/1/call", {"number": 1}, None, 409, "being_served"),
    ("POST", "/api/counters/3/call", {"number": 1}, None, 409, "being_served"),
    ("POST", "/api/counters/1/call", {"number": 100}, None, 422, "number_out_of_range"),
    ("POST", "/api/counters/1/call", {"number": 0}, None, 422, "invalid_input"),
    ("POST", "/api/counters/1/call", {"number": 10000}, None, 422, "invalid_input"),
    ("POST", "/api/counters/1/call", {}, None, 422, "invalid_input"),
    ("POST", "/api/counters/1/call-held", {"number": 2}, None, 409, "not_held"),
    ("POST", "/api/counters/1/clear-absence", {"number": 2}, None, 409, "not_absent"),
    ("POST", "/api/counters/1/clear-absence", {"token": TOKEN_LIKE}, None, 404,
     "unknown_ticket"),
    ("POST", "/api/counters/1/transfer", {}, None, 422, "invalid_input"),
    ("POST", "/api/counters/1/transfer", {"service": "Z"}, None, 404, "unknown_service"),
    ("POST", "/api/counters/1/transfer", {"counter": "9"}, None, 404, "unknown_counter"),
    ("POST", "/api/counters/1/transfer", {"counter": "1"}, None, 422, "transfer_to_self"),
    ("POST", "/api/counters/1/transfer", {"service": "C", "counter": "2"}, None, 422,
     "counter_lacks_service"),
    ("POST", "/api/counters/9/open", None, None, 404, "unknown_counter"),
    ("POST", "/api/counters/9/call-next", None, None, 404, "unknown_counter"),
    ("POST", "/api/counters/9/call", {"number": 2}, None, 404, "unknown_counter"),
    ("POST", "/api/counters/9/cancel", {"number": 2}, None, 404, "unknown_counter"),
    ("POST", "/api/counters/9/finish", None, None, 404, "unknown_counter"),
    ("GET", "/api/tickets/" + TOKEN_LIKE, None, None, 404, "unknown_ticket"),
    ("GET", "/api/day/close", None, None, 405, "method_not_allowed"),
    ("GET", "/api/counters/1/call-next", None, None, 405, "method_not_allowed"),
    ("DELETE", "/api/tickets", None, None, 405, "method_not_allowed"),
    ("POST", "/api/state", {}, None, 405, "method_not_allowed"),
    ("PUT", "/api/health", None, None, 405, "method_not_allowed"),
    ("GET", "/api/nope", None, None, 404, "not_found"),
    ("POST", "/api/counters/1/dance", None, None, 404, "not_found"),
    ("POST", "/api/tickets/", {"service": "A"}, None, 404, "not_found"),
    ("POST", "/api/tickets", None, b'{"service": "A", "lang": "' + b"x" * 70_000 + b'"}',
     413, "too_large"),
    ("POST", "/api/counters/2/open", None, b"x" * 70_000, 413, "too_large"),
    ("POST", "/api/counters/1/call", None, b"{" + b" " * 65_540 + b"}", 413, "too_large"),
]


@pytest.mark.parametrize(("method", "path", "body", "raw", "status", "code"), BAD_BODIES,
                         ids=[f"{m} {p} {status} {c}" for m, p, _b, _r, status, c in BAD_BODIES])
async def test_bad_request_is_refused_and_changes_nothing(
    api: Api, method: str, path: str, body: Any, raw: bytes | None, status: int, code: str,
) -> None:
    await busy(api)
    await api.refused(method, path, body, raw=raw, status=status, code=code)


async def test_refused_commands_after_a_day_close_change_nothing(api: Api) -> None:
    await busy(api)
    await api.post("/api/counters/1/finish")
    await api.post("/api/day/close")
    await api.refused("POST", "/api/tickets", {"service": "A"}, status=409, code="day_closed")
    await api.refused("POST", "/api/tickets", {"service": "A", "x": 1}, status=422,
                      code="invalid_input")


async def test_405_names_the_allowed_methods(api: Api) -> None:
    status, _data, resp = await api.request("GET", "/api/day/close")
    assert status == 405
    assert resp.headers.get("Allow") == "POST"


async def test_cancelling_a_called_or_finished_number_is_refused(api: Api) -> None:
    t = await busy(api)
    await api.refused("POST", "/api/tickets/cancel", {"token": t["a1"]["token"]}, status=409,
                      code="already_called")
    await api.post("/api/counters/1/finish")
    await api.refused("POST", "/api/counters/1/cancel", {"number": 1}, status=409,
                      code="already_served")
    await api.post("/api/tickets/cancel", {"number": 2})
    await api.refused("POST", "/api/tickets/cancel", {"number": 2}, status=409,
                      code="ticket_cancelled")
    await api.refused("POST", "/api/counters/1/call", {"number": 2}, status=409,
                      code="ticket_cancelled")


# --- websocket -------------------------------------------------------------------------------

async def _receive_state(ws: aiohttp.ClientWebSocketResponse) -> tuple[str, dict[str, Any]]:
    msg = await ws.receive(timeout=5)
    assert msg.type == aiohttp.WSMsgType.TEXT, msg
    data = json.loads(msg.data)
    assert data["type"] == "state", data
    return msg.data, data


async def test_websocket_pushes_state_on_connect_and_after_each_commit(api: Api) -> None:
    await api.issue("A")
    texts: list[str] = []
    async with api.session.ws_connect("/api/ws") as ws:
        raw, first = await _receive_state(ws)
        texts.append(raw)
        assert first["events"] == []
        assert first["state"]["seq"] == 2
        assert first["state"] == {**await api.get("/api/state"), "at": first["state"]["at"]}

        steps: list[tuple[str, Any]] = [
            ("/api/tickets", {"service": "A"}), ("/api/tickets", {"service": "B"}),
            ("/api/tickets", {"service": "A"}),
            ("/api/counters/1/open", None), ("/api/counters/1/call-next", None),
            ("/api/counters/1/hold", None), ("/api/counters/1/call-next", None),
            ("/api/counters/1/absent", None), ("/api/counters/2/open", None),
            ("/api/counters/2/call-next", None), ("/api/counters/2/transfer", {"service": "C"}),
            ("/api/tickets/cancel", {"number": 3}), ("/api/counters/1/call-held", {"number": 1}),
            ("/api/counters/2/clear-absence", {"number": 2}), ("/api/counters/2/finish", None),
            ("/api/day/close", None),
        ]
        for path, body in steps:
            result = await api.post(path, body, status=201 if path == "/api/tickets" else 200)
            raw, msg = await _receive_state(ws)
            texts.append(raw)
            assert [(e["seq"], e["type"]) for e in msg["events"]] == [
                (e["seq"], e["type"]) for e in result["events"]], path
            assert msg["state"]["seq"] == result["events"][-1]["seq"]
            for e in msg["events"]:
                assert "token" not in e["data"], e

        # a refused command commits nothing, so nothing is pushed
        await api.refused("POST", "/api/tickets", {"service": "A"}, status=409, code="day_closed")
        await ws.send_str("ping")
        msg = await ws.receive(timeout=5)
        assert json.loads(msg.data) == {"type": "pong"}

    state_text = json.dumps(await api.get("/api/state"))
    stats_text = json.dumps(await api.get("/api/stats"))
    assert len(api.tokens) == 4
    for token in api.tokens:
        for text in (*texts, state_text, stats_text):
            assert token not in text


async def test_websocket_clients_each_get_the_newest_state(api: Api) -> None:
    async with api.session.ws_connect("/api/ws") as ws1, api.session.ws_connect("/api/ws") as ws2:
        for ws in (ws1, ws2):
            assert (await _receive_state(ws))[1]["state"]["seq"] == 0
        await api.issue("A")
        for ws in (ws1, ws2):
            _raw, msg = await _receive_state(ws)
            assert msg["state"]["seq"] == 2
            assert [e["type"] for e in msg["events"]] == ["DayOpened", "TicketIssued"]


# --- OpenAPI ---------------------------------------------------------------------------------

def _resolve(node: Any, doc: dict[str, Any]) -> Any:
    """Inline every local $ref (the body schemas are small and not recursive)."""
    if isinstance(node, dict):
        if "$ref" in node:
            name = node["$ref"].removeprefix("#/components/schemas/")
            return _resolve(doc["components"]["schemas"][name], doc)
        return {k: _resolve(v, doc) for k, v in node.items()}
    if isinstance(node, list):
        return [_resolve(v, doc) for v in node]
    return node


_TYPES: dict[str, Any] = {
    "string": lambda v: isinstance(v, str),
    "integer": lambda v: isinstance(v, int) and not isinstance(v, bool),
    "number": lambda v: isinstance(v, int | float) and not isinstance(v, bool),
    "boolean": lambda v: isinstance(v, bool),
    "null": lambda v: v is None,
    "object": lambda v: isinstance(v, dict),
    "array": lambda v: isinstance(v, list),
}
_ANNOTATIONS = {"title", "description", "default", "examples"}


def schema_valid(schema: dict[str, Any], value: Any) -> bool:
    """A small JSON Schema checker for the keywords pydantic emits for our bodies.

    Unknown keywords fail loudly, so a new constraint cannot be silently ignored.
    """
    for key, arg in schema.items():
        if key in _ANNOTATIONS:
            continue
        if key == "type":
            ok = any(_TYPES[t](value) for t in ([arg] if isinstance(arg, str) else arg))
        elif key == "enum":
            ok = any(value == e and type(value) is type(e) for e in arg)
        elif key in {"minLength", "maxLength", "pattern"}:
            ok = not isinstance(value, str) or (
                len(value) >= arg if key == "minLength" else len(value) <= arg
                if key == "maxLength" else re.search(arg, value) is not None)
        elif key in {"minimum", "maximum"}:
            ok = not _TYPES["number"](value) or (value >= arg if key == "minimum" else value <= arg)
        elif key == "required":
            ok = not isinstance(value, dict) or all(k in value for k in arg)
        elif key == "properties":
            ok = not isinstance(value, dict) or all(
                schema_valid(sub, value[k]) for k, sub in arg.items() if k in value)
        elif key == "additionalProperties":
            assert arg is False, "only additionalProperties: false is understood"
            ok = not isinstance(value, dict) or set(value) <= set(schema.get("properties", {}))
        elif key == "anyOf":
            ok = any(schema_valid(s, value) for s in arg)
        elif key == "oneOf":
            ok = sum(schema_valid(s, value) for s in arg) == 1
        elif key == "allOf":
            ok = all(schema_valid(s, value) for s in arg)
        else:
            raise AssertionError(f"schema keyword {key!r} not understood by this test")
        if not ok:
            return False
    return True


def _jsonschema_verdict(schema: dict[str, Any], value: Any) -> bool | None:
    """The verdict of the jsonschema package when it is installed (a second opinion)."""
    if importlib.util.find_spec("jsonschema") is None:
        return None
    import jsonschema

    return bool(jsonschema.Draft202012Validator(schema).is_valid(value))


async def test_openapi_document_is_valid_and_lists_every_route(api: Api) -> None:
    doc = await api.get("/api/openapi.json")
    if importlib.util.find_spec("openapi_spec_validator") is not None:
        from openapi_spec_validator import validate

        validate(doc)
    assert doc["openapi"].startswith("3.1")
    assert doc["info"]["title"]
    assert doc["info"]["version"]
    op_ids = [op["operationId"] for item in doc["paths"].values() for op in item.values()]
    assert len(op_ids) == len(set(op_ids))
    for route in ROUTES:
        op = doc["paths"][route.path][route.method.lower()]
        assert op["summary"] == route.summary
        params = re.findall(r"{(\w+)}", route.path)
        assert [p["name"] for p in op.get("parameters", [])] == params
        assert all(p["in"] == "path" and p["required"] for p in op.get("parameters", []))
        assert ("201" if route.created else "200") in op["responses"]
        error = _resolve(op["responses"]["4XX"]["content"]["application/json"]["schema"], doc)
        assert error["required"] == ["error"]
        if route.body is None:
            assert "requestBody" not in op
        else:
            body = op["requestBody"]["content"]["application/json"]["schema"]
            assert body == {"$ref": f"#/components/schemas/{route.body.__name__}"}
    documented = {(p, m.upper()) for p, item in doc["paths"].items() for m in item}
    assert documented == {(r.path, r.method) for r in ROUTES} | {("/api/ws", "GET")}


# candidate bodies per request model: some valid per the document, some not
CANDIDATES: dict[str, list[Any]] = {
    "IssueBody": [
        {"service": "A"}, {"service": "B", "channel": "web", "lang": "en", "priority": True},
        {"service": "A", "lang": "zh-TW"}, {"service": "B", "channel": "reservation"},
        {"service": "Z"}, {"service": ""}, {"service": "ABCDEFGHI"}, {"service": 1},
        {"service": None}, {"service": "A", "channel": "fax"}, {"service": "A", "lang": "EN"},
        {"service": "A", "priority": 1}, {"service": "A", "priority": "true"}, {},
        {"service": "A", "x": 1}, {"channel": "web"}, {"service": "A", "kiosk": "k1"},
        {"service": "A", "kiosk": "bad kiosk!"}, {"service": "A", "kiosk": None},
    ],
    "CheckInBody": [
        {"token": "abcdefgh"}, {"token": "abcdefgh", "kiosk": "k1"}, {"token": "short"}, {},
        {"kiosk": "k1"}, {"token": "abcdefgh", "kiosk": "bad kiosk!"}, {"token": 12345678},
    ],
    "MenuBody": [{"menu": None}, {"menu": "day"}, {}, {"menu": 1}, {"menu": "x" * 33}],
    "LoginBody": [{"pin": "1234"}, {"pin": "123456789012"}, {"pin": "12"}, {"pin": "abcd"},
                  {}, {"pin": 1234}, {"pin": "1234", "x": 1}],
    "NumberBody": [
        {"number": 1}, {"number": 9999}, {"number": 100}, {"number": 0}, {"number": 10000},
        {"number": -5}, {"number": "1"}, {"number": True}, {"number": None}, {"number": 1.5},
        {}, {"number": 1, "x": 1}, {"token": "abcdefgh"},
    ],
    "TicketRefBody": [
        {"number": 1}, {"number": 9999}, {"token": "abcdefgh"}, {"token": "a" * 64},
        {"number": 1, "token": None}, {"number": None, "token": "abcdefgh"}, {},
        {"number": None}, {"number": None, "token": None}, {"number": 1, "token": "abcdefgh"},
        {"token": "short"}, {"token": "bad token!"}, {"token": "a" * 65}, {"number": 0},
        {"number": 10000}, {"number": True}, {"number": "1"}, {"token": 12345678},
        {"number": 1, "x": None},
    ],
    "TransferBody": [
        {"service": "B"}, {"counter": "2"}, {"service": "B", "counter": "2"},
        {"service": "B", "counter": None}, {"service": None, "counter": "2"},
        {"service": "ZZZZZZZZ"}, {}, {"service": None}, {"service": None, "counter": None},
        {"service": ""}, {"counter": "123456789"}, {"service": "B", "x": 1}, {"service": 1},
    ],
}


async def test_request_body_schemas_agree_with_the_server(api: Api) -> None:
    """A body valid per the OpenAPI document passes the server's input validation, and a body
    invalid per the document is refused with 422 invalid_input (never 500)."""
    doc = await api.get("/api/openapi.json")
    await api.issue("A")  # open the day, so later refusals are the body's doing
    checked = 0
    for route in ROUTES:
        if route.body is None:
            continue
        schema = _resolve(doc["paths"][route.path]["post"]["requestBody"]["content"]
                          ["application/json"]["schema"], doc)
        path = route.path.replace("{counter}", "1")
        for body in CANDIDATES[route.body.__name__]:
            valid = schema_valid(schema, body)
            second = _jsonschema_verdict(schema, body)
            assert second in (None, valid), (route.body.__name__, body, valid, second)
            status, data, _ = await api.request("POST", path, body)
            input_refused = status == 422 and data["error"]["code"] == "invalid_input"
            assert status not in (400, 500, 503), (path, body, status, data)
            assert input_refused == (not valid), (path, body, valid, status, data)
            checked += 1
    assert checked == sum(
        len(CANDIDATES[r.body.__name__]) for r in ROUTES if r.body is not None)
    assert {r.body.__name__ for r in ROUTES if r.body is not None} == set(CANDIDATES)
