"""Zeroconf: two edges on one LAN (here: loopback) find each other, each with its own scheme
(an edge serving TLS is announced as https); the TXT holds no secrets."""

from __future__ import annotations

import asyncio

from aiohttp import web

from edge.web.discovery import DISCOVERY, Discovery, get_discovery


async def test_two_edges_find_each_other_on_loopback() -> None:
    a = Discovery("site-a", "A", "127.0.0.1", 18081, interfaces=["127.0.0.1"])
    b = Discovery("site-b", "B", "127.0.0.1", 18082, interfaces=["127.0.0.1"], scheme="https")
    await a.start()
    await b.start()
    try:
        for _ in range(100):
            if {e["site"] for e in a.view()["edges"]} >= {"site-a", "site-b"}:
                break
            await asyncio.sleep(0.1)
        edges = {e["site"]: e for e in a.view()["edges"]}
        assert set(edges) >= {"site-a", "site-b"}
        assert edges["site-b"]["url"] == "https://127.0.0.1:18082/"  # b serves TLS
        assert edges["site-a"]["url"] == "http://127.0.0.1:18081/"
        assert edges["site-b"]["self"] is False
        assert edges["site-a"]["self"] is True
        assert b._info is not None
        assert set(b._info.properties) == {b"site", b"api", b"v", b"scheme"}  # public facts
    finally:
        await a.stop()
        await b.stop()


async def test_discovery_endpoint_without_zeroconf_answers_empty() -> None:
    app = web.Application()
    app.router.add_get("/api/discovery", get_discovery)
    assert DISCOVERY not in app
    request = type("R", (), {"app": app})()
    resp = await get_discovery(request)  # type: ignore[arg-type]
    assert resp.text is not None
    assert '"edges": []' in resp.text
