"""Chromium on ``/admin/stats``: a ward staff member opens a fiscal-year report for one site,
changes the column set (no script needed: links and forms), saves it, downloads the CSV and
finds the changed columns in it; a contracted operator (counter staff) is refused; axe-core
finds no serious or critical violation in Japanese or English, charts included."""

from __future__ import annotations

import asyncio
import csv
import io
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("browser")

from browser.axe import axe_source, blocking, describe, run_axe  # noqa: E402
from fleet_support import site_toml  # noqa: E402
from playwright.async_api import Browser, BrowserContext, async_playwright  # noqa: E402
from staff_support import staff_cookie  # noqa: E402

from hub.app import Hub, start_hub  # noqa: E402
from hub.auth.guard import COOKIE  # noqa: E402
from hub.settings import HubSettings  # noqa: E402
from hub.stats import store as rollup_store  # noqa: E402
from hub.stats.rollup import Cell, Key, bucket  # noqa: E402

SETTINGS = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1")
SITE, OTHER = "nerima", "oizumi"
SHOTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "stats"


def cells() -> dict[Key, Cell]:
    out: dict[Key, Cell] = {}
    for i, day in enumerate(("2026-04-06", "2026-04-07", "2026-06-10", "2027-03-30")):
        for hour in (9, 10, 14):
            out[(day, "issued", hour, "A", "", "", "kiosk", -1)] = Cell(5 + i + hour)
            out[(day, "issued", hour, "B", "", "", "web", -1)] = Cell(2)
            out[(day, "wait1", hour, "A", "1", "tanaka", "", -1)] = Cell(4, 4 * 420.0, 900.0)
            out[(day, "wait2", hour, "B", "2", "sato", "", -1)] = Cell(2, 2 * 180.0, 240.0)
            out[(day, "handling", hour, "A", "1", "tanaka", "", -1)] = Cell(4, 4 * 300.0, 600)
        out[(day, "wait1_hist", -1, "A", "", "", "", bucket(420))] = Cell(12)
        out[(day, "served", -1, "A", "1", "tanaka", "", -1)] = Cell(11)
        out[(day, "served", -1, "B", "2", "sato", "", -1)] = Cell(6)
        out[(day, "counter_open", -1, "", "1", "tanaka", "", -1)] = Cell(1, 7 * 3600.0, 25200)
    out[("2025-04-07", "issued", 9, "A", "", "", "kiosk", -1)] = Cell(40)  # last year
    return out


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    h = await start_hub(f"sqlite:///{tmp_path}/hub.db", None, port=0, settings=SETTINGS)
    for site in (SITE, OTHER):
        await h.set_config(site, site_toml(site))
    async with h.store.begin() as tx:
        await rollup_store.add(tx, SITE, cells())
        await rollup_store.add(tx, OTHER, {("2026-04-06", "issued", 9, "A", "", "", "kiosk",
                                            -1): Cell(1000)})
    try:
        yield h
    finally:
        await h.stop()


@pytest.fixture
async def chromium(chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium_path))
        yield browser
        await browser.close()


async def signed_in(browser: Browser, hub: Hub, role: str, site: str,
                    lang: str = "ja", bypass_csp: bool = False) -> BrowserContext:
    cookie = await staff_cookie(hub.store, SETTINGS, role, site)
    ctx = await browser.new_context(viewport={"width": 1366, "height": 900}, accept_downloads=True,
                                    locale="ja-JP" if lang == "ja" else "en-US",
                                    bypass_csp=bypass_csp)  # axe is injected as a script
    await ctx.add_cookies([{"name": COOKIE, "value": cookie[COOKIE], "url": hub.url}])
    return ctx


async def test_ward_staff_reports_a_fiscal_year_changes_the_columns_and_downloads(
        hub: Hub, chromium: Browser) -> None:
    ctx = await signed_in(chromium, hub, "ward_staff", SITE)
    try:
        tab = await ctx.new_page()
        errors: list[str] = []
        tab.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
        await tab.goto(f"{hub.url}/admin/stats?lang=ja")
        await tab.select_option("#f-kind", "fy")
        await tab.fill("#f-value", "2026")
        await tab.check(f"input[name=site][value={SITE}]")
        await tab.select_option("#f-group", "month")
        await tab.click("[data-testid=stats-show]")
        await tab.wait_for_selector("[data-testid=stats-report]")
        summary = tab.locator("[data-testid=stats-summary] tr[data-figure=issued] td")
        assert await summary.all_inner_texts() == ["234", "40", "+194"]
        report = await tab.locator("[data-testid=stats-report] tbody th").all_inner_texts()
        assert report == ["2026-04", "2026-06", "2027-03"]
        assert await tab.locator("figure svg").count() == 4
        # the column set: drop a column, move one up, add one, save for the ward
        await tab.click("[data-testid=remove-issued_ly]")
        await tab.click("[data-testid=up-served]")
        await tab.select_option("#f-add", "handled")
        await tab.click("[data-testid=stats-add]")
        await tab.fill("#f-name", "月次報告")
        await tab.check("input[name=owner][value=ward]")
        await tab.click("[data-testid=stats-save-set]")
        await tab.wait_for_selector("[data-testid=stats-saved]")
        editor = await tab.locator("[data-testid=stats-editor] tbody th").all_inner_texts()
        assert "発券数（前年同期）" not in editor
        assert editor[-1] == "対応件数"
        assert editor.index("完了数") < editor.index("平均対応時間（分）")
        assert "月次報告（区全体）" in await tab.locator("#f-set").inner_text()
        await tab.check("input[name=encoding][value=cp932]")
        async with tab.expect_download() as info:
            await tab.click("[data-testid=stats-download]")
        download = await info.value
        data = await asyncio.to_thread(Path(await download.path()).read_bytes)
        rows = list(csv.reader(io.StringIO(data.decode("cp932"), newline="")))
        assert rows[0] == editor
        assert [r[0] for r in rows[1:]] == ["2026-04", "2026-06", "2027-03"]
        assert errors == []
    finally:
        await ctx.close()


async def test_a_contracted_operator_cannot_reach_the_statistics(hub: Hub,
                                                                chromium: Browser) -> None:
    ctx = await signed_in(chromium, hub, "counter_staff", SITE)
    try:
        tab = await ctx.new_page()
        for path in ("/admin/stats", "/admin/stats/export?kind=fy&value=2026"):
            response = await tab.goto(f"{hub.url}{path}")
            assert response is not None
            assert response.status == 403
    finally:
        await ctx.close()


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_axe_finds_no_serious_violations(hub: Hub, chromium: Browser, lang: str) -> None:
    ctx = await signed_in(chromium, hub, "ward_staff", "*", lang, bypass_csp=True)
    try:
        tab = await ctx.new_page()
        source = axe_source()
        failures = []
        paths = (f"/admin/stats?kind=fy&value=2026&site={SITE}&group=month&by=site",
                 "/admin/stats?kind=range&start=2026-04-06&end=2026-04-07&group=day",
                 "/admin/stats?kind=day&value=2026-02-30")  # the last: the form with its error
        for i, path in enumerate(paths):
            await tab.goto(f"{hub.url}{path}&lang={lang}")
            assert await tab.get_attribute("html", "lang") == lang
            SHOTS.mkdir(parents=True, exist_ok=True)
            await tab.screenshot(path=str(SHOTS / f"stats-{lang}-{i}.png"),
                                 full_page=True)
            violations = blocking(await run_axe(tab, source))
            if violations:
                failures.append(f"{path}:\n{describe(violations)}")
        assert not failures, "\n".join(failures)
    finally:
        await ctx.close()
