"""The hub's JSON API, OpenAPI document and staff page over real HTTP (hub in web-only mode,
store filled through the same code ingest uses)."""

from __future__ import annotations

import json
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from sqlalchemy.ext.asyncio import create_async_engine
from staff_support import staff_cookie
from test_hub_ingest import SITE, TOML, EdgeLog, edge_log, expected_queues

from hub.app import Hub, start_hub
from hub.configs import store_config
from hub.ingest.projection import build_fold
from hub.store import HubStore
from hub.web import create_app
from hub.web.api import ROUTES, SETTINGS

STATUS = {"v": 1, "site": SITE, "online": True, "session": "s-1",
          "at": "2026-11-21T09:00:00+09:00",
          "versions": {"software": "0.1.0", "config": 1, "schema": 2},
          "last_seq": 40, "outbox": 3}
DEVICES = [
    {"device": "printer-1", "kind": "printer", "state": "degraded", "reason": "paper_near_end",
     "since": "2026-11-21T08:59:00+09:00"},
    {"device": "display-1", "kind": "display", "state": "ok", "reason": None, "since": None},
]


async def fill(store: HubStore, log: EdgeLog) -> None:
    """What ingest would have written for oizumi, plus a status-only and a config-only site."""
    await store_config(store, SITE, TOML)
    await store_config(store, "nerima-main", TOML.replace('id = "oizumi"', 'id = "nerima-main"'))
    await store.insert_events(SITE, log.events)
    last = log.events[-1].seq
    async with store.begin() as tx:
        await tx.upsert_site(SITE, last_seq_contiguous=last, last_seq_received=last,
                             online=True, session="s-1", status=json.dumps(STATUS),
                             config_version_applied=1)
        fold = await build_fold(tx, SITE, last, 1)
        queues, counters = fold.rows(fold.state.last_at)  # type: ignore[union-attr]
        await tx.replace_projection(SITE, queues, counters)
        await tx.upsert_site(SITE, projection=fold.status,
                             last_event_at=fold.state.last_at)  # type: ignore[union-attr]
        await tx.replace_devices(SITE, DEVICES)
        await tx.upsert_site("hikarigaoka", online=False, session="s-9")


class Client:
    def __init__(self, base: str, session: aiohttp.ClientSession) -> None:
        self.base, self.session = base, session

    async def get(self, path: str, status: int = 200, **kw: Any) -> Any:
        async with self.session.get(self.base + path, **kw) as r:
            body = await r.text()
            assert r.status == status, body
            return json.loads(body) if r.content_type == "application/json" else body


@pytest.fixture(scope="module")
def log() -> EdgeLog:
    return edge_log()


@pytest.fixture
async def hub(tmp_path: Path, log: EdgeLog) -> AsyncIterator[Hub]:
    h = await start_hub(f"sqlite:///{tmp_path}/hub.db", None, port=0)
    await fill(h.store, log)
    yield h
    await h.stop()


@pytest.fixture
async def client(hub: Hub) -> AsyncIterator[Client]:
    cookies = await staff_cookie(hub.store, hub.runner.app[SETTINGS])  # staff routes need one
    async with aiohttp.ClientSession(cookies=cookies) as session:
        yield Client(hub.url, session)


async def test_sites_overview(client: Client) -> None:
    sites = (await client.get("/api/sites"))["sites"]
    assert [s["site"] for s in sites] == ["hikarigaoka", "nerima-main", "oizumi"]
    by = {s["site"]: s for s in sites}
    oz = by[SITE]
    assert oz["online"] is True
    assert oz["name"]["ja"] == "大泉区民事務所"
    assert oz["last_seq"] == oz["last_seq_received"] > 0
    assert oz["lag_s"] > 0
    assert oz["outbox"] == 3
    assert oz["edge_last_seq"] == 40
    assert oz["config"] == {"desired": 1, "applied": 1, "in_sync": True}
    assert oz["devices"]["total"] == 2
    assert oz["devices"]["worst"] == "degraded"
    assert oz["devices"]["problems"] == [{"device": "printer-1", "kind": "printer",
                                          "state": "degraded", "reason": "paper_near_end"}]
    assert oz["projection"] == "ok"
    assert oz["software"] == "0.1.0"
    hk = by["hikarigaoka"]
    assert hk["online"] is False
    assert hk["last_seq"] == 0
    assert hk["lag_s"] is None
    assert hk["config"] == {"desired": None, "applied": None, "in_sync": True}
    assert hk["devices"]["worst"] is None
    assert hk["projection"] == "no_config"
    nm = by["nerima-main"]
    assert nm["online"] is False
    assert nm["config"]["desired"] == 1
    assert nm["config"]["in_sync"] is False


async def test_one_site_has_queues_counters_devices(client: Client, log: EdgeLog) -> None:
    oz = await client.get(f"/api/sites/{SITE}")
    queues = {q["service"]: q for q in oz["queues"]}
    assert {k: (q["waiting"], q["second_wait"], q["issued"], q["open_counters"])
            for k, q in queues.items()} == expected_queues(log.state)
    assert queues["A"]["name"]["en"].startswith("Moving")
    assert queues["B"]["estimate"]["low_s"] <= queues["B"]["estimate"]["high_s"]
    counters = {k["counter"]: k for k in oz["counters"]}
    assert counters["1"]["open"] is True
    assert counters["3"]["open"] is False
    assert counters["1"]["name"]["ja"] == "1番窓口"
    assert [d["device"] for d in oz["devices_list"]] == ["display-1", "printer-1"]
    missing = await client.get("/api/sites/nowhere", status=404)
    assert missing["error"]["code"] == "unknown_site"
    assert missing["error"]["message_ja"]


async def test_events_paging_without_tokens(client: Client, log: EdgeLog) -> None:
    page = await client.get(f"/api/sites/{SITE}/events?after=2&limit=5")
    assert [e["seq"] for e in page["events"]] == [3, 4, 5, 6, 7]
    assert page["next_after"] == 7
    assert page["last_seq"] == log.events[-1].seq
    first = log.events[2].to_dict()
    got = page["events"][0]
    assert {k: v for k, v in got.items() if k != "data"} == \
        {k: v for k, v in first.items() if k != "data"}
    everything = await client.get(f"/api/sites/{SITE}/events?limit=1000")
    assert len(everything["events"]) == len(log.events)
    issued = [e for e in everything["events"] if e["type"] == "TicketIssued"]
    assert issued
    assert all("token" not in e["data"] for e in issued)
    assert "ticket" in issued[0]["data"]
    end = await client.get(f"/api/sites/{SITE}/events?after=100000")
    assert end["events"] == []
    assert end["next_after"] == 100000
    for bad in ("after=-1", "after=x", "limit=0", "limit=1001", "limit=1e3"):
        err = await client.get(f"/api/sites/{SITE}/events?{bad}", status=400)
        assert err["error"]["code"] == "bad_parameter"
    await client.get("/api/sites/nowhere/events", status=404)


async def test_openapi_lists_every_route_and_errors_are_json(client: Client) -> None:
    spec = await client.get("/api/openapi.json")
    assert spec["openapi"].startswith("3.1")
    for route in ROUTES:
        assert route.method.lower() in spec["paths"][route.path]
    for method, path in (("get", "/api/status"), ("get", "/t/{token}"),
                         ("post", "/api/web-tickets"), ("get", "/w/{site}/{service}"),
                         ("post", "/t/{token}/notice")):  # the resident side is listed too
        assert method in spec["paths"][path], path
    params = spec["paths"]["/api/sites/{site}/events"]["get"]["parameters"]
    assert {p["name"]: p["in"] for p in params} == {"site": "path", "after": "query",
                                                    "limit": "query"}
    assert "text/html" in spec["paths"]["/staff/sites"]["get"]["responses"]["200"]["content"]
    nf = await client.get("/api/nothing", status=404)
    assert nf["error"]["code"] == "not_found"
    async with client.session.post(client.base + "/api/sites") as r:
        assert r.status == 405
        assert r.headers["Allow"] == "GET"
        assert (await r.json())["error"]["code"] == "method_not_allowed"
    health = await client.get("/api/health")
    assert health["ok"] is True
    assert health["ingest"] is None
    assert health["schema"]


async def test_staff_page_in_japanese_and_english(client: Client, hub: Hub) -> None:
    ja = await client.get("/staff/sites")
    for text in ("拠点一覧", "大泉区民事務所", "● オンライン", "○ オフライン",
                 "用紙残りわずかです", "配信 1 / 適用 1", "拠点へ未適用", 'id="site-oizumi"',
                 "設定未配信のため待ち状況なし"):
        assert text in ja, text
    en = await client.get("/staff/sites?lang=en")
    for text in ("Sites", "Oizumi Residents Office", "● online", "Paper is running low",
                 "desired 1 / applied 1", 'lang="en"'):
        assert text in en, text
    by_header = await client.get("/staff/sites", headers={"Accept-Language": "en-US,ja;q=0.5"})
    assert "Oizumi Residents Office" in by_header
    # names come from staff-edited configs: they are escaped, never markup
    await store_config(hub.store, SITE, TOML.replace("大泉区民事務所", "<b>大泉</b>"))
    async with hub.store.begin() as tx:
        await tx.upsert_site(SITE, config_version_applied=2)
    assert "&lt;b&gt;大泉&lt;/b&gt;" in await client.get("/staff/sites")


async def test_empty_hub_page(tmp_path: Path) -> None:
    h = await start_hub(f"sqlite:///{tmp_path}/empty.db", None, port=0)
    try:
        cookies = await staff_cookie(h.store, h.runner.app[SETTINGS])
        async with aiohttp.ClientSession(cookies=cookies) as s:
            c = Client(h.url, s)
            assert "まだ拠点がありません" in await c.get("/staff/sites")
            assert (await c.get("/api/sites"))["sites"] == []
            async with s.get(h.url + "/", allow_redirects=False) as r:
                assert r.status == 503  # the residents' page needs the ingest's live state
                assert "waiting status" in await r.text()
    finally:
        await h.stop()


async def test_database_down_is_503_not_500() -> None:
    store = HubStore(create_async_engine("postgresql+asyncpg://postgres@127.0.0.1:1/none"))
    runner = web.AppRunner(create_app(store))
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = runner.addresses[0][1]
    try:
        # a (stale) session cookie: checking it is what needs the database
        async with aiohttp.ClientSession(cookies={"madoguchi_staff": "stale"}) as s:
            c = Client(f"http://127.0.0.1:{port}", s)
            for path in ("/api/sites", f"/api/sites/{SITE}", f"/api/sites/{SITE}/events",
                         "/staff/sites"):
                err = await c.get(path, status=503)
                assert err["error"]["code"] == "storage_unavailable"
    finally:
        await runner.cleanup()
        await store.close()
