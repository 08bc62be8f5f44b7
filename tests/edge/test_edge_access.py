"""The edge under the same rules as the hub (issue 12 item 5): every route declares a level, and
a route x caller matrix over a real socket checks that each caller is let in exactly where the
level says. Callers: nobody (not a kiosk address), a kiosk address, an operator of counter 1
signed in with the counter PIN, contracted counter staff at counter 1 and ward staff at counter
2 (both with login IDs pushed from the hub), and a statistics viewer (who may not sign in)."""

from __future__ import annotations

import dataclasses
import json
import sqlite3
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from argon2 import PasswordHasher
from conftest import free_port
from support import morning, small_site

from edge.app import build_edge, start_edge
from edge.domain.clock import ManualClock
from edge.domain.model import SiteConfig
from edge.sync.staff import Credential
from edge.web.access import ACCESS, LEVELS, Level, check, check_declared
from edge.web.api import ROUTES, STAFF
from edge.web.auth import Operator, hash_pin

PASSWORD = "counter-password-1"
PIN = "2468"
DENIED = {"login_required", "other_counter", "staff_only", "ward_staff_only", "not_a_kiosk"}
_FAST = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)  # verify reads the params


def site(kiosk_networks: tuple[str, ...]) -> SiteConfig:
    base = small_site(access="staff")
    counters = dict(base.counters)
    counters["1"] = dataclasses.replace(counters["1"], pin_hash=hash_pin(PIN))
    cfg: SiteConfig = dataclasses.replace(base, counters=counters, kiosk_networks=kiosk_networks)
    return cfg


@dataclass
class Edge:
    http: aiohttp.ClientSession
    db: Path
    tokens: dict[str, str]  # caller -> bearer token


async def _login(http: aiohttp.ClientSession, counter: str, body: dict[str, str]) -> Any:
    async with http.post(f"/api/counters/{counter}/login", json=body) as r:
        return r.status, await r.json()


@pytest.fixture
async def edge(tmp_path: Path, request: pytest.FixtureRequest) -> AsyncIterator[Edge]:
    networks = getattr(request, "param", ("10.99.0.0/16",))
    db = tmp_path / "e.db"
    built = build_edge(site(networks), db, ManualClock(morning()))
    built.app[STAFF].replace([
        Credential("keiko", _FAST.hash(PASSWORD), frozenset({"counter_staff"})),
        Credential("ward-tanaka", _FAST.hash(PASSWORD), frozenset({"ward_staff"})),
        Credential("viewer", _FAST.hash(PASSWORD), frozenset({"stats_viewer"})),
    ], "v1")
    port = free_port()
    runner = await start_edge(built, "127.0.0.1", port)
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as http:
            tokens = {}
            for who, counter, body in [
                    ("pin", "1", {"pin": PIN}),
                    ("counter_staff", "1", {"login": "keiko", "password": PASSWORD}),
                    ("ward_staff", "2", {"login": "WARD-tanaka", "password": PASSWORD})]:
                status, data = await _login(http, counter, body)
                assert status == 200, data
                tokens[who] = data["session"]
            yield Edge(http, db, tokens)
    finally:
        await runner.cleanup()


CALLERS = ("anonymous", "pin", "counter_staff", "ward_staff")


def expected(level: Level, who: str, counter: str | None) -> bool:
    """What the level promises, written out per caller (not by calling ``check``)."""
    if level == "public":
        return True
    if who == "anonymous":
        return False  # not a kiosk address either
    if level in ("kiosk", "staff"):
        return True
    if level == "operator":
        return counter is None or {"pin": "1", "counter_staff": "1", "ward_staff": "2"}[who] \
            == counter
    return who == "ward_staff"  # site_staff


def _concrete(path: str) -> str:
    return path.replace("{counter}", "1").replace("{token}", "nosuchtoken123")


async def test_every_edge_route_declares_a_level_and_admits_exactly_its_callers(
        edge: Edge) -> None:
    cases = 0
    for route in ROUTES:
        if route.path.endswith(("/login", "/logout")):
            continue  # sign-in itself: below
        for who in CALLERS:
            headers = {} if who == "anonymous" else {"Authorization": f"Bearer {edge.tokens[who]}"}
            async with edge.http.request(route.method, _concrete(route.path), json={},
                                         headers=headers) as r:
                body = await r.json()
            code = body.get("error", {}).get("code") if isinstance(body, dict) else None
            allowed = code not in DENIED
            want = expected(route.access, who, "1" if "{counter}" in route.path else None)
            assert allowed == want, (route.method, route.path, route.access, who, r.status, body)
            if not allowed:
                assert r.status in (401, 403)
            cases += 1
    print(f"edge access matrix: {len(ROUTES) - 2} routes x {len(CALLERS)} callers = {cases}")
    assert cases == (len(ROUTES) - 2) * len(CALLERS)


async def test_priority_reservation_and_web_tickets_need_staff(edge: Edge) -> None:
    staff = {"Authorization": f"Bearer {edge.tokens['counter_staff']}"}
    for extra in ({"priority": True}, {"channel": "reservation"}, {"channel": "web"}):
        async with edge.http.post("/api/tickets", json={"service": "B", **extra}) as r:
            assert (r.status, (await r.json())["error"]["code"]) == (403, "not_a_kiosk")
        async with edge.http.post("/api/tickets", json={"service": "B", **extra},
                                  headers=staff) as r:
            if extra.get("channel") == "reservation":  # staff neither: only a scanned booking
                assert (r.status, (await r.json())["error"]["code"]) == \
                    (422, "reservation_required")
            else:
                assert r.status == 201, await r.json()


@pytest.mark.parametrize("edge", [("127.0.0.0/8",)], indirect=True)
async def test_a_kiosk_address_issues_plain_tickets_but_not_priority(edge: Edge) -> None:
    async with edge.http.post("/api/tickets", json={"service": "A"}) as r:
        assert r.status == 201
    async with edge.http.post("/api/tickets", json={"service": "A", "priority": True}) as r:
        assert (r.status, (await r.json())["error"]["code"]) == (401, "login_required")
    async with edge.http.post("/api/day/close") as r:
        assert r.status == 401


async def test_sign_in_rules(edge: Edge) -> None:
    assert await _login(edge.http, "2", {"login": "viewer", "password": PASSWORD}) == (
        403, {"error": {"code": "wrong_login",
                        "message": "Wrong login ID or password, or not allowed here",
                        "message_ja":
                            "ログインIDかパスワードが違うか、この窓口を使う権限がありません"}})
    status, body = await _login(edge.http, "2", {"login": "nobody", "password": PASSWORD})
    assert (status, body["error"]["code"]) == (403, "wrong_login")
    status, body = await _login(edge.http, "2", {"pin": PIN})  # counter 2 has no PIN
    assert (status, body["error"]["code"]) == (403, "staff_login_required")
    status, body = await _login(edge.http, "1", {"login": "keiko"})
    assert (status, body["error"]["code"]) == (422, "invalid_input")
    for _ in range(5):
        await _login(edge.http, "3", {"login": "keiko", "password": "wrong"})
    status, body = await _login(edge.http, "3", {"login": "keiko", "password": PASSWORD})
    assert (status, body["error"]["code"]) == (429, "too_many_attempts")


async def test_events_carry_the_staff_member_who_acted(edge: Edge) -> None:
    staff = {"Authorization": f"Bearer {edge.tokens['counter_staff']}"}
    pin = {"Authorization": f"Bearer {edge.tokens['pin']}"}
    async with edge.http.post("/api/tickets", json={"service": "A"},
                              headers={"Authorization": f"Bearer {edge.tokens['ward_staff']}"}):
        pass
    for path in ("/api/counters/1/open", "/api/counters/1/call-next"):
        async with edge.http.post(path, headers=staff) as r:
            assert r.status == 200, await r.json()
    async with edge.http.post("/api/counters/1/finish", headers=pin) as r:
        assert r.status == 200
    with sqlite3.connect(edge.db) as conn:
        rows = [(t, json.loads(d).get("staff")) for t, d in
                conn.execute("SELECT type, data FROM events ORDER BY seq")]
    acted = [(t, s) for t, s in rows if t in ("TicketIssued", "CounterOpened", "TicketCalled",
                                                "TicketFinished")]
    assert acted == [("TicketIssued", "ward-tanaka"), ("CounterOpened", "keiko"),
                     ("TicketCalled", "keiko"), ("TicketFinished", None)], rows


def test_deny_by_default_a_route_without_a_level_stops_the_edge(tmp_path: Path) -> None:
    built = build_edge(site(()), tmp_path / "e.db", ManualClock(morning()))
    assert all(route.access in LEVELS for route in ROUTES)
    assert ("GET", "/api/ws") in built.app[ACCESS]
    check_declared(built.app)  # as built: every route declared
    async def undeclared(_r: web.Request) -> web.Response:
        return web.Response()

    built.app.router.add_get("/api/undeclared", undeclared)
    with pytest.raises(RuntimeError, match="/api/undeclared"):
        check_declared(built.app)
    built.writer.close()


def test_open_sites_keep_the_old_rule_and_staff_sites_do_not() -> None:
    open_site = dataclasses.replace(site(()), access="open")
    staff_site = site(())
    for level in ("public", "kiosk", "operator", "site_staff"):
        assert check(level, open_site, None, counter="2") is None  # counter 2 has no PIN
    assert check("staff", open_site, None) is not None  # a PIN exists: staff acts need one
    assert check("staff", dataclasses.replace(small_site(), access="open"), None) is None
    assert check("operator", open_site, None, counter="1") is not None  # counter 1 has one
    assert check("operator", staff_site, None, counter="2") is not None
    assert check("kiosk", staff_site, None, remote="10.0.0.5") is None  # no kiosk addresses
    who = Operator("1", "keiko", frozenset({"counter_staff"}))
    assert check("site_staff", staff_site, who) is not None
