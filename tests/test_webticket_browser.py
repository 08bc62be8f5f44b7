"""The web-ticket phone page in real headless Chromium (W4): a resident on a phone-sized
screen takes a number; the browser solves the proof of work with crypto.subtle, the hub asks
the site over the real mosquitto, and the ticket is in the site's own queue."""

from __future__ import annotations

import re
from pathlib import Path

import aiohttp
import pytest
from browser.support import browser
from playwright.async_api import Browser
from webticket_support import rig

__all__ = ["browser"]  # the fixture


async def test_phone_page_takes_a_number_into_the_sites_queue(
        mqtt_broker_url: str, tmp_path: Path, browser: Browser,
        monkeypatch: pytest.MonkeyPatch) -> None:
    env = {"MADOGUCHI_WEBTICKET_POW_BITS": "10"}  # real work for the page's script
    async with rig(mqtt_broker_url, tmp_path, env, monkeypatch) as r:
        ctx = await browser.new_context(viewport={"width": 390, "height": 844},
                                        device_scale_factor=3, is_mobile=True, has_touch=True)
        page = await ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(f"{r.hub.url}/w/{r.site}/B?lang=en")
        assert await page.locator("h1").inner_text() == "Web ticket"
        contact = page.get_by_label("Phone number or e-mail (optional)")
        await contact.fill("090-5555-0000")
        button = page.get_by_role("button", name="Take a number")
        await button.wait_for()
        assert await button.is_enabled()
        # nothing wider than the phone: no horizontal scrolling
        assert await page.evaluate("document.documentElement.scrollWidth") <= 390
        await button.tap()
        await page.wait_for_url(re.compile(r"/t/[A-Za-z0-9_-]+"), timeout=20_000)
        token = re.search(r"/t/([A-Za-z0-9_-]+)", page.url)
        assert token is not None
        writer = r.edge.writer
        tid = writer.state.tokens.get(token.group(1))
        assert tid is not None, "the token on the page is not a ticket of the site"
        t = writer.state.tickets[tid]
        assert (t.channel, t.service, t.state, t.lang) == ("web", "B", "waiting", "en")
        async with aiohttp.ClientSession() as s, s.get(f"{r.edge_url}/api/state") as resp:
            state = await resp.json()
        assert next(x for x in state["services"] if x["code"] == "B")["waiting"] == 1
        rows = await r.rows()
        assert [(x["number"], x["state"]) for x in rows] == [(t.number, "active")]
        assert errors == []

        # the same phone again: one active ticket per contact, said on the page
        await page.goto(f"{r.hub.url}/w/{r.site}/B?lang=ja")
        await page.get_by_label("電話番号またはメールアドレス（任意）").fill("09055550000")
        await page.get_by_role("button", name="番号札を取る").tap()
        status = page.locator("#status")
        await status.filter(has_text="すでにお持ちです").wait_for(timeout=20_000)
        assert len(writer.state.tickets) == 1
        await ctx.close()
