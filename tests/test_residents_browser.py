"""Resident pages in headless Chromium (a phone-sized window) against a real hub with the three
sample sites as real edges over mosquitto: the status page follows the queues live without a
reload, the W2 hint appears when the main office gets crowded, and a ticket page shows its call
within a second. Screenshots in ja and en go to ``test-artifacts/residents/``."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from playwright.async_api import Browser, Page
from residents_support import Ward, ward

from edge.domain import commands as c

pytest_plugins = ["browser.support"]

SHOTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "residents"
OPEN = {"nerima-main": ("1", "2"), "hikarigaoka": ("1", "4"), "oizumi": ("1",)}
PHONE = {"width": 390, "height": 844}


class Phone:
    """One page in its own context, recording script errors, reloads and outside requests."""

    def __init__(self, page: Page) -> None:
        self.page, self.errors, self.loads = page, [], 0
        page.on("pageerror", lambda exc: self.errors.append(f"pageerror: {exc}"))
        page.on("console", lambda m: self.errors.append(m.text) if m.type == "error" else None)
        page.on("request", lambda r: self.errors.append(f"outside: {r.url}")
                if urlsplit(r.url).hostname not in ("127.0.0.1", None) else None)
        page.on("framenavigated", self._nav)

    def _nav(self, frame: Any) -> None:
        if frame == self.page.main_frame:
            self.loads += 1

    async def live(self) -> None:
        await self.page.locator("[data-testid=connection][data-state=live]").wait_for()

    async def text(self, testid: str) -> str:
        return (await self.page.get_by_test_id(testid).inner_text()).strip()

    async def shot(self, name: str) -> None:
        SHOTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(SHOTS / f"{name}.png"), full_page=True)


@pytest.fixture
async def w(mqtt_broker_url: str, tmp_path: Path) -> AsyncIterator[Ward]:
    async with ward(mqtt_broker_url, tmp_path, open_counters=OPEN) as live:
        yield live


@pytest.fixture
async def phone(browser: Browser, w: Ward) -> AsyncIterator[Any]:
    contexts = []
    phones: list[Phone] = []

    async def open_(path: str, lang: str) -> Phone:
        ctx = await browser.new_context(viewport=PHONE, locale="ja-JP" if lang == "ja"
                                        else "en-US")
        contexts.append(ctx)
        p = Phone(await ctx.new_page())
        phones.append(p)
        sep = "&" if "?" in path else "?"
        await p.page.goto(f"{w.url}{path}{sep}lang={lang}")
        return p

    yield open_
    for ctx in contexts:
        await ctx.close()
    problems = [e for p in phones for e in p.errors]
    assert not problems, problems


async def until_text(p: Phone, testid: str, want: str, timeout_ms: float = 5000) -> None:
    await p.page.wait_for_function(
        "([id, want]) => { const el = document.querySelector(`[data-testid='${id}']`);"
        " return el && el.textContent.trim() === want; }", arg=[testid, want],
        timeout=timeout_ms)


async def test_status_page_follows_the_queues_live(w: Ward, phone: Any) -> None:
    p = await phone("/", "en")
    await p.live()
    assert await p.page.get_attribute("html", "lang") == "en"
    before = int(await p.text("waiting-oizumi-B"))
    await w.issue("oizumi", "B", 3)
    await until_text(p, "waiting-oizumi-B", str(before + 3))
    await w.run("oizumi", c.CallNext("1"))
    await until_text(p, "waiting-oizumi-B", str(before + 2))
    await w.issue("nerima-main", "A", 2)
    await w.run("nerima-main", c.OpenCounter("4"))
    await w.run("nerima-main", c.CallNext("2"))
    await w.run("nerima-main", c.Transfer("2", "T"))  # second wait (W3)
    await until_text(p, "second-nerima-main-T", "1")
    await until_text(p, "counters-nerima-main-T", "1")
    assert p.loads == 1, "the page reloaded instead of updating in place"
    await p.shot("status-en")
    ja = await phone("/", "ja")
    await ja.live()
    assert await ja.text("second-nerima-main-T") == "1"
    assert "ライブ" in await ja.text("connection")
    await ja.shot("status-ja")


async def test_recommendation_appears_when_the_main_office_gets_crowded(
        w: Ward, phone: Any) -> None:
    p = await phone("/", "en")
    await p.live()
    hint = p.page.get_by_test_id("quieter-nerima-main-B")
    assert await hint.is_hidden()
    await w.issue("nerima-main", "B", 25)
    await hint.wait_for(state="visible", timeout=10_000)
    text = await hint.inner_text()
    assert text.startswith("Quieter now:")
    assert "Hikarigaoka" in text
    crowded = p.page.locator("[data-testid=compare-B] li.crowded")
    await crowded.wait_for()
    assert "Nerima" in await crowded.inner_text()
    assert p.loads == 1
    await p.shot("status-crowded-en")


async def test_ticket_page_shows_the_call_within_a_second(w: Ward, phone: Any) -> None:
    await w.issue("hikarigaoka", "B")
    (t,) = await w.issue("hikarigaoka", "B")
    await w.synced("hikarigaoka")
    token = w.token("hikarigaoka", t["number"])
    p = await phone(f"/t/{token}", "en")
    await p.live()
    assert await p.text("number") == str(t["number"])
    assert await p.text("ahead") == "1"
    # this hub has no notice channel: no form that can only fail, and the page says why
    assert await p.page.get_by_test_id("notice-form").is_hidden()
    assert "not set up" in await p.text("notice-status")
    await p.shot("ticket-waiting-en")
    await w.run("hikarigaoka", c.CallNext("4"))
    await until_text(p, "ahead", "0")
    await w.run("hikarigaoka", c.CallNext("1"))  # calls this ticket at counter 1
    called = time.monotonic()
    await p.page.locator("[data-testid=ticket][data-state=called]").wait_for(timeout=1000)
    elapsed = time.monotonic() - called
    assert elapsed < 1.0, elapsed
    assert "Please go to Counter 1" in await p.text("state")
    assert await p.page.get_by_test_id("notice-form").is_hidden()
    assert await p.page.get_by_test_id("notice-status").is_hidden()
    assert "No counter open" not in await p.page.inner_text("main")
    assert p.loads == 1
    await p.shot("ticket-called-en")
    ja = await phone(f"/t/{token}", "ja")
    assert "1番窓口" in await ja.text("state")
    await ja.shot("ticket-called-ja")
