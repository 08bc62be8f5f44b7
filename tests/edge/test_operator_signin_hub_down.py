"""An operator signs in at a counter panel with their own login ID while the hub is down
(issue 12 item 5): the hub pushes the site's staff list over a real mosquitto, the hub stops,
the edge restarts (the list survives in its database), and in Chromium the operator signs in at
a counter without a PIN, opens it and calls; the events name them. A contracted operator whose
role was removed at the hub before it went down cannot sign in."""

from __future__ import annotations

import asyncio
import json
import sqlite3
from pathlib import Path
from typing import Any

import pytest
from conftest import free_port
from playwright.async_api import async_playwright, expect
from staff_support import PASSWORD
from support import morning
from sync_support import Mosquitto, unique_site, until

from edge.app import SyncOptions, build_edge, start_edge
from edge.config import parse_site_config
from edge.domain.clock import ManualClock
from edge.web.api import STAFF
from hub.app import start_hub
from hub.auth import accounts, service
from hub.web.api import SETTINGS

SCREENSHOTS = Path("test-artifacts/operator-signin")


def config_toml(site: str) -> str:
    """One service, one counter without a PIN; sign-in required (``access`` by default)."""
    return f"""
[site]
id = "{site}"
name = {{ ja = "練馬区民事務所", en = "Nerima Residents Office" }}

[[services]]
code = "A"
name = {{ ja = "住民異動", en = "Moving" }}
range = [1, 999]

[[counters]]
id = "1"
name = {{ ja = "1番窓口", en = "Counter 1" }}
services = ["A"]
"""


async def test_operator_signs_in_with_the_hub_down(tmp_path: Path, chromium_path: Path) -> None:
    broker = Mosquitto(tmp_path).start()
    site, prefix = unique_site("signin"), "mdg-signin"
    config = parse_site_config(config_toml(site))
    db = tmp_path / "edge.db"
    hub = await start_hub(f"sqlite:///{tmp_path}/hub.db", broker.url, prefix, port=0)
    try:
        await service.create_staff(hub.store, "sato-k", PASSWORD, grants=[(site, "counter_staff")])
        gone = await service.create_staff(hub.store, "gone", PASSWORD,
                                          grants=[(site, "counter_staff")])
        await service.create_staff(hub.store, "elsewhere", PASSWORD,
                                   grants=[("other-site", "counter_staff")])
        edge = build_edge(config, db, ManualClock(morning()),
                          sync=SyncOptions(broker.url, prefix=prefix))
        runner = await start_edge(edge, "127.0.0.1", free_port())
        try:
            book = edge.app[STAFF]
            await until(lambda: _ready(len(book) == 2), "the staff list reaches the edge", 40)
            # an administrator takes every role of "gone" away on the staff page
            await accounts.set_grants(hub.store, hub.runner.app[SETTINGS], "admin", gone, [],
                                      "", "127.0.0.1")
            assert hub.ingest is not None
            hub.ingest.config_changed()
            await until(lambda: _ready(len(book) == 1), "the removal reaches the edge", 40)
        finally:
            await runner.cleanup()
    finally:
        await hub.stop()
    broker.stop()  # the hub and the broker are gone: only the edge's own copy is left

    edge = build_edge(config, db, ManualClock(morning()))
    port = free_port()
    runner = await start_edge(edge, "127.0.0.1", port)
    try:
        assert len(edge.app[STAFF]) == 1  # loaded from the edge database at start
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(chromium_path))
            page = await browser.new_page(viewport={"width": 1366, "height": 768})
            await page.goto(f"http://127.0.0.1:{port}/ui/operator.html?counter=1&lang=ja")
            await expect(page.get_by_test_id("staff-id")).to_be_visible()
            await expect(page.get_by_test_id("pin")).to_be_hidden()  # counter 1 has no PIN
            await expect(page.locator("#login-h")).to_have_text(
                "ログインIDとパスワードでログインしてください")
            await asyncio.to_thread(SCREENSHOTS.mkdir, parents=True, exist_ok=True)
            await page.screenshot(path=str(SCREENSHOTS / "login-1366.png"))
            for who in ("gone", "elsewhere"):  # role removed; another site's account
                await page.get_by_test_id("staff-id").fill(who)
                await page.get_by_test_id("staff-password").fill(PASSWORD)
                await page.get_by_test_id("staff-login").click()
                # wait for this attempt's answer, not the previous attempt's message
                await expect(page.get_by_test_id("staff-login")).to_be_enabled()
                await expect(page.get_by_test_id("message")).to_contain_text(
                    "ログインIDかパスワード")
                await expect(page.get_by_test_id("open")).to_be_hidden()
            await page.get_by_test_id("staff-id").fill("sato-k")
            await page.get_by_test_id("staff-password").fill(PASSWORD)
            await page.get_by_test_id("staff-login").click()
            await expect(page.get_by_test_id("open")).to_be_visible()
            await page.get_by_test_id("open").click()
            await expect(page.get_by_test_id("message")).to_contain_text("開始")
            await page.screenshot(path=str(SCREENSHOTS / "panel-1366.png"))
            await browser.close()
    finally:
        await runner.cleanup()
    with sqlite3.connect(db) as conn:
        opened = [json.loads(d) for (d,) in conn.execute(
            "SELECT data FROM events WHERE type = 'CounterOpened'")]
    assert [e.get("staff") for e in opened] == ["sato-k"]


async def _ready(value: bool) -> Any:
    await asyncio.sleep(0)
    return value or None


pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")
