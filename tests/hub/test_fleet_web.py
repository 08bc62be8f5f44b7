"""``/admin/fleet`` and the hub's ``/metrics`` over real HTTP (a web-only hub on SQLite, and
the rules on PostgreSQL too).

Ward staff see only the sites of their roles, administrators every site, counter staff are
refused; the page shows online, sync lag, outbox, device problems, disk, memory and CPU in ja
and en. The rules form refuses an out-of-range value at its field and stores nothing; a valid
one is stored and audited with what changed. A recipient's address is sealed in the database,
shown masked, and in neither the audit trail nor any log. ``/metrics`` answers 403 unless the
token or an allowed address is used.
"""

from __future__ import annotations

import json
import logging
import re
import uuid
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from fleet_support import csrf_of, put_site, site_toml
from playwright.async_api import async_playwright
from sqlalchemy import select, text
from staff_support import staff_cookie

from hub.app import Hub, start_hub
from hub.audit.tables import audit_log
from hub.auth.guard import COOKIE
from hub.fleet import service
from hub.fleet.rules import Thresholds
from hub.fleet.tables import fleet_recipients
from hub.settings import HubSettings

SETTINGS = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1")
ADDRESS = "fleet.tantou@city.example.jp"
A, B = "fleet-a", "fleet-b"


@pytest.fixture(params=["sqlite", "postgresql"])
async def hub(request: pytest.FixtureRequest, tmp_path: Path,
              monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[Hub]:
    monkeypatch.setenv("MADOGUCHI_METRICS_TOKEN", "scrape-secret")
    monkeypatch.setenv("MADOGUCHI_METRICS_ALLOW", "192.0.2.0/24")
    if request.param == "sqlite":
        h = await start_hub(f"sqlite:///{tmp_path}/hub.db", None, port=0, settings=SETTINGS)
        schema = None
    else:
        schema = f"fleetweb_{uuid.uuid4().hex[:12]}"
        h = await start_hub(request.getfixturevalue("postgres_url"), None, port=0,
                            schema=schema, settings=SETTINGS)
    try:
        for site in (A, B):
            await h.set_config(site, site_toml(site, printer=f"{site}-p"))
        await put_site(h.store, A, devices=[
            {"device": "printer-k1", "kind": "printer", "state": "error",
             "reason": "paper_out", "since": "2026-12-07T09:00:00+09:00"}], disk=93.5)
        await put_site(h.store, B, online=False)
        yield h
    finally:
        if schema is not None:
            async with h.store.engine.begin() as conn:
                await conn.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
        await h.stop()


async def get(hub: Hub, cookies: dict[str, str], path: str) -> tuple[int, str]:
    async with aiohttp.ClientSession(cookies=cookies) as http, \
            http.get(f"{hub.url}{path}", allow_redirects=False) as r:
        return r.status, await r.text()


async def post(hub: Hub, cookies: dict[str, str], path: str,
               form: dict[str, str]) -> tuple[int, str, str]:
    async with aiohttp.ClientSession(cookies=cookies) as http, \
            http.post(f"{hub.url}{path}", data=form, allow_redirects=False) as r:
        return r.status, await r.text(), r.headers.get("Location", "")


def sites_on(page: str) -> set[str]:
    return set(re.findall(r'<tr data-site="([^"]+)"', page))


async def test_scope_by_role_and_what_the_page_shows(hub: Hub) -> None:
    ward_a = await staff_cookie(hub.store, SETTINGS, "ward_staff", A)
    admin = await staff_cookie(hub.store, SETTINGS, "admin")
    counter = await staff_cookie(hub.store, SETTINGS, "counter_staff", A)
    status, page = await get(hub, ward_a, "/admin/fleet?lang=ja")
    assert status == 200
    assert sites_on(page) == {A}
    assert "拠点の稼働状況" in page
    assert "用紙切れです" in page
    assert "93.5 %" in page
    assert "51.5 %" in page
    assert "0.40 / 2" in page
    assert "接続中" in page
    assert f'value="{B}"' not in page  # not in the rules' site list either
    status, page = await get(hub, admin, "/admin/fleet?lang=en")
    assert status == 200
    assert sites_on(page) == {A, B}
    assert "Out of paper" in page
    assert "Offline" in page
    assert 'style=' not in page  # CSP: no inline styles
    status, _ = await get(hub, counter, "/admin/fleet")
    assert status == 403
    status, _ = await get(hub, {}, "/admin/fleet")
    assert status == 401  # not signed in (a browser is sent to sign-in instead)


async def _audit(hub: Hub, action: str) -> list[dict[str, Any]]:
    async with hub.store.read() as tx:
        rows = (await tx.conn.execute(select(audit_log).where(
            audit_log.c.action == action))).all()
    return [dict(r._mapping) for r in rows]


async def test_rules_form_validates_at_the_field_and_audits_the_change(hub: Hub) -> None:
    ward_a = await staff_cookie(hub.store, SETTINGS, "ward_staff", A)
    _, page = await get(hub, ward_a, f"/admin/fleet?site={A}&lang=ja")
    form = {"csrf": csrf_of(page), "site": A, "rule_paper_out": "on", "rule_site_offline": "on",
            "offline_minutes": "10", "disk_pct": "100", "outbox_minutes": "10", "clock_s": "30"}
    status, page, _ = await post(hub, ward_a, "/admin/fleet/rules?lang=ja", form)
    assert status == 400
    field = re.search(r'<div class="field invalid">\s*<label for="f-([a-z_]+)"', page)
    assert field is not None
    assert field.group(1) == "disk_pct"
    assert "範囲外の値です。" in page
    assert await service.all_rules(hub.store) == {}
    assert await _audit(hub, "fleet_rules_changed") == []

    status, _, location = await post(hub, ward_a, "/admin/fleet/rules?lang=ja",
                                     {**form, "disk_pct": "85"})
    assert status == 303
    assert "saved=rules" in location
    assert (await service.all_rules(hub.store))[A] == Thresholds(
        frozenset({"paper_out", "site_offline"}), 10, 85, 10, 30)
    [row] = await _audit(hub, "fleet_rules_changed")
    detail = json.loads(row["detail"])
    assert detail["site"] == A
    assert detail["changes"]["disk_pct"] == [90, 85]
    assert detail["changes"]["offline_minutes"] == [5, 10]
    # the same again changes nothing and adds no audit row
    status, _, location = await post(hub, ward_a, "/admin/fleet/rules?lang=ja",
                                     {**form, "disk_pct": "85"})
    assert "saved=unchanged" in location
    assert len(await _audit(hub, "fleet_rules_changed")) == 1
    # another site's rules are not this ward staff member's to set, nor the ward default
    for other in (B, "*"):
        status, page, _ = await post(hub, ward_a, "/admin/fleet/rules?lang=en",
                                     {**form, "disk_pct": "85", "site": other})
        assert status == 400
        assert "You cannot choose this site." in page
    assert set(await service.all_rules(hub.store)) == {A}


async def test_recipients_are_sealed_masked_audited_and_never_logged(
        hub: Hub, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG)
    ward_a = await staff_cookie(hub.store, SETTINGS, "ward_staff", A)
    _, page = await get(hub, ward_a, f"/admin/fleet?site={A}&lang=ja")
    csrf = csrf_of(page)
    status, page, _ = await post(hub, ward_a, "/admin/fleet/recipients?lang=ja",
                                 {"csrf": csrf, "site": A, "address": "not-an-address",
                                  "lang": "ja"})
    assert status == 400
    assert "メールアドレスの形式が正しくありません。" in page
    status, _, location = await post(hub, ward_a, "/admin/fleet/recipients?lang=ja",
                                     {"csrf": csrf, "site": A, "address": ADDRESS, "lang": "en"})
    assert status == 303
    assert "saved=added" in location
    status, _, _ = await post(hub, ward_a, "/admin/fleet/recipients?lang=ja",
                              {"csrf": csrf, "site": B, "address": ADDRESS, "lang": "en"})
    assert status == 400  # not this member's site
    async with hub.store.read() as tx:
        rows = (await tx.conn.execute(select(fleet_recipients))).all()
    assert len(rows) == 1
    assert ADDRESS not in rows[0].address_ct
    [recipient] = await service.recipients(hub.store, SETTINGS, [A])
    assert recipient.address == ADDRESS
    assert ADDRESS not in repr(recipient)
    _, page = await get(hub, ward_a, f"/admin/fleet?site={A}&lang=ja")
    assert "f***@city.example.jp" in page
    assert ADDRESS not in page
    [added] = await _audit(hub, "fleet_recipient_added")
    assert ADDRESS not in added["detail"]
    assert recipient.id in added["detail"]

    status, _, _ = await post(hub, ward_a, "/admin/fleet/recipients/remove?lang=ja",
                              {"csrf": csrf, "site": A, "id": recipient.id})
    assert status == 303
    assert await service.recipients(hub.store, SETTINGS, [A]) == []
    assert len(await _audit(hub, "fleet_recipient_removed")) == 1
    assert not any(ADDRESS in r.getMessage() for r in caplog.records)


async def test_metrics_need_the_token_or_an_allowed_address(hub: Hub) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.get(f"{hub.url}/metrics") as r:
            assert r.status == 403  # 127.0.0.1 is not in 192.0.2.0/24
        async with http.get(f"{hub.url}/metrics",
                            headers={"Authorization": "Bearer wrong"}) as r:
            assert r.status == 403
        async with http.get(f"{hub.url}/metrics",
                            headers={"Authorization": "Bearer scrape-secret"}) as r:
            assert r.status == 200
            assert r.headers["Content-Type"].startswith("text/plain; version=0.0.4")
            body = await r.text()
    assert 'madoguchi_hub_sites{state="online"} 1.0' in body
    assert 'madoguchi_hub_sites{state="offline"} 1.0' in body
    assert f'madoguchi_hub_site_online{{site="{A}"}} 1.0' in body
    assert f'madoguchi_hub_devices{{kind="printer",site="{A}",state="error"}} 1.0' in body
    assert f'madoguchi_hub_site_disk_used_percent{{site="{A}"}} 93.5' in body
    assert "madoguchi_hub_alerts_open_total 0.0" in body


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_the_page_fits_1366_by_768_in_chromium_and_a_rule_is_set_by_keyboard(
        tmp_path: Path, chromium_path: Path, lang: str) -> None:
    h = await start_hub(f"sqlite:///{tmp_path}/hub.db", None, port=0, settings=SETTINGS)
    try:
        await h.set_config(A, site_toml(A, printer=f"{A}-p"))
        await put_site(h.store, A, devices=[
            {"device": "printer-k1", "kind": "printer", "state": "error",
             "reason": "paper_out", "since": None}], disk=93.5)
        cookie = await staff_cookie(h.store, SETTINGS, "ward_staff", A)
        async with async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(chromium_path))
            try:
                context = await browser.new_context(viewport={"width": 1366, "height": 768})
                await context.add_cookies([{"name": COOKIE, "value": cookie[COOKIE],
                                            "url": h.url}])
                tab = await context.new_page()
                errors: list[str] = []
                tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
                await tab.goto(f"{h.url}/admin/fleet?lang={lang}")
                sideways = await tab.evaluate("document.documentElement.scrollWidth - "
                                              "document.documentElement.clientWidth")
                clipped = await tab.evaluate("""[...document.querySelectorAll(
                    'td, th, label, button, legend, nav a, .hint')]
                    .filter(e => e.scrollWidth > e.clientWidth + 1)
                    .map(e => e.tagName + ':' + e.textContent.trim().slice(0, 40))""")
                assert sideways == 0
                assert clipped == []
                assert errors == []  # no CSP refusals: no inline style or script
                await tab.fill("#f-disk_pct", "80")
                await tab.focus("#f-disk_pct")
                await tab.keyboard.press("Enter")  # submits the rules form
                await tab.wait_for_selector("[data-testid=fleet-saved]")
                assert (await service.all_rules(h.store))[A].disk_pct == 80
            finally:
                await browser.close()
    finally:
        await h.stop()
