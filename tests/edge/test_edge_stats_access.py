"""Issue 15 item 8: the edge's ``GET /api/stats`` (today's figures per service and counter) is
for the office's ward staff only: a contracted counter operator signed in at a counter, or a
counter's PIN session, gets 403; nobody signed in gets 401; ward staff of the office get it."""

from __future__ import annotations

import dataclasses
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from argon2 import PasswordHasher
from conftest import free_port
from support import morning, small_site

from edge.app import build_edge, start_edge
from edge.domain.clock import ManualClock
from edge.sync.staff import Credential
from edge.web.api import STAFF
from edge.web.auth import hash_pin

PASSWORD = "counter-password-1"
PIN = "2468"
_FAST = PasswordHasher(time_cost=1, memory_cost=8192, parallelism=1)


@pytest.fixture
async def http(tmp_path: Path) -> AsyncIterator[tuple[aiohttp.ClientSession, dict[str, str]]]:
    base = small_site(access="staff")
    counters = dict(base.counters)
    counters["1"] = dataclasses.replace(counters["1"], pin_hash=hash_pin(PIN))
    built = build_edge(dataclasses.replace(base, counters=counters), tmp_path / "e.db",
                       ManualClock(morning()))
    built.app[STAFF].replace([
        Credential("keiko", _FAST.hash(PASSWORD), frozenset({"counter_staff"})),
        Credential("ward-tanaka", _FAST.hash(PASSWORD), frozenset({"ward_staff"})),
    ], "v1")
    port = free_port()
    runner = await start_edge(built, "127.0.0.1", port)
    try:
        async with aiohttp.ClientSession(f"http://127.0.0.1:{port}") as s:
            tokens = {}
            for who, counter, body in (
                    ("pin", "1", {"pin": PIN}),
                    ("counter_staff", "2", {"login": "keiko", "password": PASSWORD}),
                    ("ward_staff", "3", {"login": "ward-tanaka", "password": PASSWORD})):
                async with s.post(f"/api/counters/{counter}/login", json=body) as r:
                    data: Any = await r.json()
                    assert r.status == 200, data
                    tokens[who] = data["session"]
            yield s, tokens
    finally:
        await runner.cleanup()


async def test_today_statistics_need_ward_staff_of_the_site(
        http: tuple[aiohttp.ClientSession, dict[str, str]]) -> None:
    s, tokens = http
    async with s.get("/api/stats") as r:
        assert (r.status, (await r.json())["error"]["code"]) == (401, "login_required")
    for who in ("counter_staff", "pin"):
        async with s.get("/api/stats", headers={"Authorization": f"Bearer {tokens[who]}"}) as r:
            body = await r.json()
            assert (r.status, body["error"]["code"]) == (403, "ward_staff_only"), who
            assert "issued_total" not in body
    async with s.get("/api/stats",
                     headers={"Authorization": f"Bearer {tokens['ward_staff']}"}) as r:
        assert r.status == 200
        assert (await r.json())["issued_total"] == 0
