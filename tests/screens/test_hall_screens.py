"""The hall screens as a busy 15-counter office shows them, in headless Chromium, saved to
``test-artifacts/screens/`` to be looked at: the guide monitor with 15 counters calling (ja, en,
portrait), the counter display at 800x480 (ja, en, a long counter name with a four-digit number)
and the backyard at 1366x768 and 1920x1080 with counters serving past the threshold.

Besides the pictures, each screen is checked for what a picture hides: on the counter display
the name, label and number fit their boxes (no ``overflow: hidden`` cut, inside the screen); on
the monitor every big row's text is inside its row; on the backyard long serving is flagged.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import free_port
from playwright.async_api import Browser, Page, async_playwright, expect
from support import morning

from edge.app import build_edge, start_edge
from edge.bench.monitor15 import hall_toml
from edge.config import load_site_config
from edge.domain.clock import ManualClock

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "screens"
LONG_JA = "住民異動・国民健康保険 総合窓口"
LONG_EN = "Residents Registration and Health Insurance Desk"

# every text box of a page that must not be cut, per element: outside the screen, or wider than
# its box, or (``tall``) taller than it. The monitor's rows set line-height under the font's
# ascent+descent on purpose (the ink fits: ``bench screens`` measures it), so only widths there.
FITS_JS = """([sels, tall]) => sels.flatMap((sel) => [...document.querySelectorAll(sel)].map(
  (el) => {
  const r = el.getBoundingClientRect();
  const out = r.left < -1 || r.top < -1 || r.right > innerWidth + 1 || r.bottom > innerHeight + 1;
  return {sel, text: el.textContent.trim(), font: getComputedStyle(el).fontSize,
          box: [el.clientWidth, el.clientHeight], content: [el.scrollWidth, el.scrollHeight],
          cut: out || el.scrollWidth > el.clientWidth + 1
               || (tall && el.scrollHeight > el.clientHeight + 1)};
}))"""


# per big row of the monitor: are number, arrow and counter name side by side, in that order?
ORDER_JS = """() => [...document.querySelectorAll('[data-testid="calling"] .row')].map((row) => {
  const [n, a, c] = ['.num', '.arrow', '.cname']
    .map((s) => row.querySelector(s).getBoundingClientRect());
  return n.right <= a.left + 1 && a.right <= c.left + 1;
})"""


@dataclass
class Hall:
    url: str
    http: aiohttp.ClientSession
    browser: Browser
    clock: ManualClock

    async def post(self, path: str, body: Any = None) -> dict[str, Any]:
        async with self.http.post(path, json=body) as r:
            data: dict[str, Any] = await r.json()
            assert r.status < 300, (path, data)
            return data

    async def page(self, path: str, size: tuple[int, int], ready: str) -> Page:
        context = await self.browser.new_context(viewport={"width": size[0], "height": size[1]},
                                                 reduced_motion="reduce")
        page = await context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda exc: errors.append(str(exc)))
        await page.goto(self.url + path)
        await page.locator(ready).first.wait_for(state="visible")
        await page.evaluate("() => document.fonts.ready.then(() => true)")
        await page.wait_for_timeout(400)
        assert not errors, errors
        return page


@pytest.fixture
async def hall(tmp_path: Path, chromium_path: Path) -> AsyncIterator[Hall]:
    toml = hall_toml().replace('ja = "15番窓口", en = "Counter 15"',
                               f'ja = "{LONG_JA}", en = "{LONG_EN}"')
    path = tmp_path / "hall.toml"
    path.write_text(toml, encoding="utf-8")
    clock = ManualClock(morning())
    edge = build_edge(load_site_config(path), tmp_path / "e.db", clock)
    port = free_port()
    runner: web.AppRunner = await start_edge(edge, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    try:
        async with async_playwright() as pw, aiohttp.ClientSession(base_url=url) as http:
            browser = await pw.chromium.launch(executable_path=str(chromium_path))
            try:
                yield Hall(url, http, browser, clock)
            finally:
                await browser.close()
    finally:
        await runner.cleanup()


async def busy(hall: Hall) -> None:
    """15 counters calling (four-digit numbers too), recalls, an absent number, a second wait."""
    for i in range(1, 16):
        await hall.post(f"/api/counters/{i}/open")
    for code in "AAAAAABBBBBCCCCDDDDEEEE":
        await hall.post("/api/tickets", {"service": code, "lang": "ja"})
    await hall.post("/api/counters/1/call-next")
    await hall.post("/api/counters/1/absent")
    await hall.post("/api/counters/2/call-next")
    await hall.post("/api/counters/2/transfer", {"service": "T"})
    await hall.post("/api/counters/3/call-next")
    await hall.post("/api/counters/3/transfer", {"service": "T"})
    for i in range(1, 16):
        if i != 15:
            await hall.post(f"/api/counters/{i}/call-next")
    hall.clock.advance(18 * 60)  # the first counters have served for 18 minutes
    await hall.post("/api/counters/15/call-next")
    await hall.post("/api/counters/9/recall")


async def shoot(page: Page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    await page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


async def prove_clip_is_caught(page: Page) -> None:
    """The fit check is not blind: a number forced too wide, then one forced too tall (a narrow
    "1" whose line is higher than its box), are both reported as cut, and the box is the
    screen-sized track, not the text's own line (which would always fit itself)."""
    number = "#number"
    for text, size, why in (("1001", "400px", "too wide"), ("1", "420px", "too tall")):
        await page.eval_on_selector(
            number, "(e, [t, s]) => { e.textContent = t; e.style.fontSize = s; }", [text, size])
        boxes = await page.evaluate(FITS_JS, [[number], True])
        assert [b["cut"] for b in boxes] == [True], (why, boxes)
        if why == "too tall":
            fits_wide = await page.eval_on_selector(number, "e => e.scrollWidth <= e.clientWidth")
            assert fits_wide, "the tall case must be caught by the height check alone"
    await page.eval_on_selector(number, "e => { e.style.fontSize = '150px'; }")
    assert [b["cut"] for b in await page.evaluate(FITS_JS, [[number], True])] == [False]


@pytest.mark.slow
async def test_hall_screens_fit_and_are_saved(hall: Hall) -> None:
    await busy(hall)
    async with hall.http.get("/api/state") as r:
        state = await r.json()
    assert len(state["calling"]) == 15

    for name, size, query in (("monitor15-ja", (1920, 1080), "lang=ja"),
                              ("monitor15-en", (1920, 1080), "lang=en"),
                              ("monitor15-portrait-ja", (1080, 1920), "lang=ja&layout=portrait"),
                              ("monitor15-portrait-en", (1080, 1920), "lang=en&layout=portrait")):
        page = await hall.page(f"/ui/monitor.html?{query}", size, '[data-testid="calling"] .row')
        rows = page.locator('[data-testid="calling"] .row')
        assert 4 <= await rows.count() <= 8
        await shoot(page, name)  # before the checks: a failure leaves its picture
        cut = [b for b in await page.evaluate(FITS_JS, [[".row .cname", ".row .csub"], False])
               if b["cut"]]
        assert not cut, (name, cut)
        # each row reads "number -> counter" left to right, in its own columns (no overlap)
        order = await page.evaluate(ORDER_JS)
        assert order, name
        assert all(order), (name, order)
        # the calls beyond the rows are listed as earlier calls, not lost
        await expect(page.get_by_test_id("recent").locator(".chip.still")).not_to_have_count(0)
        await page.context.close()

    for name, counter, lang in (("counter-800x480-long-en", "15", "en"),
                                ("counter-800x480-ja", "4", "ja"),
                                ("counter-800x480-en", "4", "en"),
                                ("counter-800x480-long-ja", "15", "ja")):
        page = await hall.page(f"/ui/counter.html?counter={counter}&lang={lang}", (800, 480),
                               '[data-testid="current-number"]')
        number = page.get_by_test_id("current-number")
        await expect(number).to_have_text(str(next(
            c["number"] for c in state["calling"] if c["counter"] == counter)))
        await shoot(page, name)  # before the checks: a failure leaves its picture
        boxes = await page.evaluate(FITS_JS, [["#counter-name", "#label", "#number"], True])
        assert len(boxes) == 3
        assert not [b for b in boxes if b["cut"]], (name, boxes)
        size = await number.evaluate("e => parseFloat(getComputedStyle(e).fontSize)")
        assert size >= 150, (name, size)  # the number as large as fits: most of the 480 px
        if name == "counter-800x480-ja":
            await prove_clip_is_caught(page)
        await page.context.close()

    for name, size in (("backyard-1366x768-ja", (1366, 768)), ("backyard-1920x1080-ja",
                                                                (1920, 1080))):
        page = await hall.page("/ui/backyard.html?lang=ja", size, '[data-testid="serving-1"]')
        await expect(page.get_by_test_id("serving-4")).to_have_attribute("data-long", "true")
        await expect(page.get_by_test_id("serving-15")).to_have_attribute("data-long", "false")
        await shoot(page, name)
        # all 15 counter cards on the screen, none cut (the last row was below a 768 px screen)
        cards = await page.evaluate(FITS_JS, [[".by-cards > li"], False])
        assert len(cards) == 15, (name, len(cards))
        assert not [c for c in cards if c["cut"]], (name, cards)
        await page.context.close()
    page = await hall.page("/ui/backyard.html?lang=en&serve=30", (1920, 1080),
                           '[data-testid="serving-1"]')
    await expect(page.get_by_test_id("serving-4")).to_have_attribute("data-long", "false")
    await shoot(page, "backyard-1920x1080-en")
