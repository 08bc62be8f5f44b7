"""The settings editor end to end in Chromium with a real edge over a real mosquitto (issue 13,
must-show 1).

A ward staff member edits a kiosk menu (its buttons and its guidance, in Japanese), checks (the
preview shows the new guidance), publishes; the edge's kiosk page, open all along and never
reloaded, shows the new guidance and buttons. An invalid edit (overlapping number ranges) shows
its error at the range field and publishes nothing. Two browsers on the same site: the second
save is refused with a clear message and the second person's text is still in the form.
Rollback restores the previous version on the edge. Every step is in the audit trail.
Screenshots at 1366x768 go to test-artifacts/settings-editor/.
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import aiohttp
from conftest import free_port
from playwright.async_api import Page, async_playwright, expect
from sqlalchemy import select
from staff_support import staff_cookie
from support import morning
from sync_support import Mosquitto, unique_site, until

from edge.app import SyncOptions, build_edge, start_edge
from edge.config import parse_site_config
from edge.domain.clock import ManualClock
from hub.app import Hub, start_hub
from hub.audit.tables import audit_log
from hub.settings import HubSettings

SHOTS = Path("test-artifacts/settings-editor")
SETTINGS = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1")
CHECK = "確認（検査・差分・見た目）"


def site_toml(site: str) -> str:
    return f"""# a small office for the editor's test
[site]
id = "{site}"
name = {{ ja = "関区民事務所", en = "Seki Residents Office" }}
guidance = {{ ja = "ご用件のボタンを押してください。", en = "Touch the button for your errand." }}

[[services]]
code = "A"
name = {{ ja = "住民異動届", en = "Moving in or out" }}
range = [1, 499]

[[services]]
code = "B"
name = {{ ja = "証明書の発行", en = "Certificates" }}
range = [501, 999]

[[counters]]
id = "1"
name = {{ ja = "1番窓口", en = "Counter 1" }}
services = ["A", "B"]

[[menus]]
id = "day"
name = {{ ja = "通常", en = "Regular" }}
services = ["A", "B"]
default = true

[calendar]
national_holidays = false
year_end = []
"""


async def _edge_version(url: str) -> int | None:
    async with aiohttp.ClientSession() as http, http.get(f"{url}/api/state") as r:
        state: dict[str, Any] = await r.json()
        version = state.get("config_version")
        return version if isinstance(version, int) else None


async def _staff_page(browser: Any, hub: Hub, site: str) -> Page:
    cookie = await staff_cookie(hub.store, SETTINGS, site=site)
    ctx = await browser.new_context(viewport={"width": 1366, "height": 768}, locale="ja-JP")
    await ctx.add_cookies([{"name": k, "value": v, "url": hub.url} for k, v in cookie.items()])
    return await ctx.new_page()


async def _actions(hub: Hub, site: str) -> list[str]:
    async with hub.store.read() as tx:
        rows = (await tx.conn.execute(select(audit_log.c.action)
                                      .where(audit_log.c.target == site)
                                      .order_by(audit_log.c.id))).all()
    return [str(r[0]) for r in rows]


async def test_edit_preview_publish_conflict_rollback_live_on_the_kiosk(
        tmp_path: Path, chromium_path: Path) -> None:
    await asyncio.to_thread(SHOTS.mkdir, parents=True, exist_ok=True)
    broker = Mosquitto(tmp_path).start()
    site, prefix = unique_site("editor"), "mdg-editor"
    text = site_toml(site)
    hub = await start_hub(f"sqlite:///{tmp_path}/hub.db", broker.url, prefix, port=0,
                          settings=SETTINGS)
    try:
        await hub.set_config(site, text)
        edge = build_edge(parse_site_config(text), tmp_path / "edge.db", ManualClock(morning()),
                          sync=SyncOptions(broker.url, prefix=prefix))
        port = free_port()
        runner = await start_edge(edge, "127.0.0.1", port)
        edge_url = f"http://127.0.0.1:{port}"
        try:
            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=str(chromium_path))
                kiosk_ctx = await browser.new_context(viewport={"width": 1080, "height": 1920},
                                                      locale="ja-JP")
                kiosk = await kiosk_ctx.new_page()
                await kiosk.goto(f"{edge_url}/ui/kiosk.html?kiosk=k1")
                await expect(kiosk.get_by_test_id("service-B")).to_be_visible()
                await kiosk.evaluate("window.__notReloaded = true")

                staff = await _staff_page(browser, hub, site)
                other = await _staff_page(browser, hub, site)
                editor = f"{hub.url}/admin/settings/{site}?lang=ja"
                await staff.goto(editor)
                await other.goto(editor)  # the second person opens v1 too

                # --- edit a kiosk menu and its guidance, check, preview, publish -------------
                await staff.get_by_role("button", name="発券機のメニュー", exact=True).click()
                await staff.locator("#f-menus-0-services").fill("B")
                await staff.locator("#f-menus-0-guidance-ja").fill(
                    "本日は証明書の発行のみ受け付けます。")
                await staff.locator("#f-menus-0-guidance-en").fill(
                    "Today we issue certificates only.")
                await staff.get_by_role("button", name=CHECK).last.click()
                await expect(staff.locator("#checked")).to_be_visible()
                await expect(staff.locator(".mock-guidance")).to_have_text(
                    "本日は証明書の発行のみ受け付けます。")
                await expect(staff.locator("table.diff tr.add").first).to_be_visible()
                await staff.screenshot(path=str(SHOTS / "check-1366.png"), full_page=True)
                await staff.get_by_role("button", name="公開", exact=True).click()
                await expect(staff.locator("#published")).to_contain_text("版 2")

                # the kiosk shows it live
                await expect(kiosk.get_by_test_id("guidance")).to_have_text(
                    "本日は証明書の発行のみ受け付けます。", timeout=15000)
                await expect(kiosk.get_by_test_id("service-A")).to_have_count(0)
                await expect(kiosk.get_by_test_id("service-B")).to_be_visible()
                assert await kiosk.evaluate("window.__notReloaded === true")
                await kiosk.screenshot(path=str(SHOTS / "kiosk-after-publish.png"))

                # --- an invalid edit: the error at its field, nothing published ------------
                await staff.get_by_role("button", name="業務", exact=True).click()
                await staff.locator("#f-services-1-range-0").fill("400")
                await staff.get_by_role("button", name="公開", exact=True).click()
                field = staff.locator("#f-services-1-range-field")
                await expect(field).to_have_class("field field--error")
                await expect(field).to_contain_text("重なっています")
                await expect(staff.locator("#errors")).to_contain_text("services[1].range")
                await staff.screenshot(path=str(SHOTS / "invalid-1366.png"))
                assert (await hub.store.config(site) or (0, ""))[0] == 2

                # --- the second browser, still on v1, is refused and keeps its text --------
                await other.locator("#f-site-guidance-ja").fill("窓口は17時までです。")
                await other.get_by_role("button", name="公開", exact=True).click()
                await expect(other.locator("#conflict")).to_contain_text(
                    "ほかの職員が先に公開しました")
                await expect(other.locator("#f-site-guidance-ja")).to_have_value(
                    "窓口は17時までです。")
                await other.screenshot(path=str(SHOTS / "conflict-1366.png"))
                assert (await hub.store.config(site) or (0, ""))[0] == 2

                # --- rollback to version 1: the kiosk is back ------------------------------
                await staff.goto(f"{hub.url}/admin/settings/{site}/versions?lang=ja")
                await staff.screenshot(path=str(SHOTS / "versions-1366.png"))
                await staff.get_by_role("button", name="この版に戻す 1").click()
                await expect(staff.locator("#message")).to_contain_text("戻しました")
                await expect(kiosk.get_by_test_id("guidance")).to_have_text(
                    "ご用件のボタンを押してください。", timeout=15000)
                await expect(kiosk.get_by_test_id("service-A")).to_be_visible()
                assert await kiosk.evaluate("window.__notReloaded === true")
                await browser.close()
            await until(lambda: _at(edge_url, 3), "the edge applies v3", 20)
        finally:
            await runner.cleanup()
        assert await _actions(hub, site) == ["config_published", "config_conflict",
                                             "config_rolled_back"]
    finally:
        await hub.stop()
        broker.stop()


async def _at(url: str, version: int) -> bool:
    return await _edge_version(url) == version
