"""axe-core on the resident status page and a ticket page, in Japanese and English, on a phone
sized window: no serious or critical violations. The ward is lived in first (a crowded main
office so the W2 hint shows, second wait, a called ticket and a waiting one with the notice form
and a notice message), so every element is on the page when axe looks."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

pytest.register_assert_rewrite("browser")

from browser.axe import axe_source, blocking, describe, run_axe  # noqa: E402
from playwright.async_api import Browser  # noqa: E402
from residents_support import Ward, ward  # noqa: E402

from edge.domain import commands as c  # noqa: E402

pytest_plugins = ["browser.support"]

SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "residents"
OPEN = {"nerima-main": ("1", "2", "4"), "hikarigaoka": ("1", "4"), "oizumi": ("1",)}


@pytest.fixture
async def w(mqtt_broker_url: str, tmp_path: Path) -> AsyncIterator[Ward]:
    async with ward(mqtt_broker_url, tmp_path, open_counters=OPEN) as live:
        await live.issue("nerima-main", "B", 25)
        await live.issue("nerima-main", "A", 2)
        await live.run("nerima-main", c.CallNext("2"))
        await live.run("nerima-main", c.Transfer("2", "T"))
        await live.issue("hikarigaoka", "B", 3)
        await live.run("hikarigaoka", c.CallNext("4"))
        await live.settled()
        yield live


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_resident_pages_have_no_serious_axe_violations(w: Ward, browser: Browser,
                                                             lang: str) -> None:
    source = axe_source()
    called = w.token("hikarigaoka", 1001)
    waiting = w.token("hikarigaoka", 1003)
    pages = {"status": "/", "ticket-called": f"/t/{called}",
             "ticket-waiting": f"/t/{waiting}?notice=invalid_contact",
             "error": "/t/not-a-ticket"}
    ctx = await browser.new_context(viewport={"width": 390, "height": 844}, bypass_csp=True,
                                    locale="ja-JP" if lang == "ja" else "en-US")
    failures = []
    try:
        for name, path in pages.items():
            page = await ctx.new_page()
            sep = "&" if "?" in path else "?"
            await page.goto(f"{w.url}{path}{sep}lang={lang}")
            if name != "error":
                await page.locator("[data-testid=connection][data-state=live]").wait_for()
                assert await page.get_attribute("html", "lang") == lang
            SHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SHOTS / f"axe-{name}-{lang}.png"), full_page=True)
            violations = await run_axe(page, source)
            if violations:
                print(f"--- axe on {name} ({lang}):\n{describe(violations)}")
            if blocking(violations):
                failures.append(f"{name}:\n{describe(blocking(violations))}")
            await page.close()
    finally:
        await ctx.close()
    assert not failures, "\n".join(failures)
