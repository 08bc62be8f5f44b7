"""A web ticket from phone to counter in real headless Chromium (issue 11, W4): real hub, real
edge, real mosquitto.

A resident takes a web ticket on a 390×844 page; its ticket page shows a QR, which this test
decodes from a screenshot (pyzbar) and types into a real edge's kiosk page as the keyboard-wedge
scanner would. Before that, the ticket's turn comes and it is deferred (the counter calls the
walk-in behind it); after the check-in it is called at the counter and finished. A second web
ticket is never checked in: after the grace it is marked absent, and its page says what to do
without saying its holder did not come. The phone page is checked and photographed in ja and
en in every state (test-artifacts/checkin/).
"""

from __future__ import annotations

import io
import re
from pathlib import Path
from typing import Any

import aiohttp
import pytest
import webticket_support
from browser.support import browser, scan
from PIL import Image
from playwright.async_api import Browser, BrowserContext, Page
from pyzbar.pyzbar import decode
from webticket_support import Rig, rig

from edge.domain.commands import CallNext, Finish, Issue, OpenCounter

__all__ = ["browser"]  # the fixture

SHOTS = Path(__file__).resolve().parent.parent.parent / "test-artifacts" / "checkin"
PHONE: dict[str, Any] = {"viewport": {"width": 390, "height": 844}, "device_scale_factor": 2,
                         "is_mobile": True, "has_touch": True}
BLAME = ("いらっしゃいませんでした", "were not there", "could not find you", "お会いできません")


def named_toml(site: str) -> str:
    """The web-ticket rig's site with counters named as a ward names them."""
    toml = ORIGINAL(site)
    for n in ("1", "2", "3"):
        toml = toml.replace(f'ja = "{n}番", en = "Counter {n}"',
                            f'ja = "{n}番窓口", en = "Counter {n}"')
    return toml


ORIGINAL = webticket_support.web_toml


class Phones:
    """The same ticket page open in Japanese and English."""

    def __init__(self, ctx: BrowserContext, r: Rig) -> None:
        self.ctx, self.r = ctx, r
        self.pages: dict[str, Page] = {}

    async def open(self, token: str) -> None:
        for lang in ("ja", "en"):
            page = await self.ctx.new_page()
            await page.goto(f"{self.r.hub.url}/t/{token}?lang={lang}")
            await page.locator("[data-testid=connection][data-state=live]").wait_for()
            self.pages[lang] = page

    async def phase(self, phase: str, name: str, *, has: dict[str, str]) -> None:
        """Both pages reach ``phase`` (pushed by the stream), say ``has[lang]``, blame nobody
        and show no estimate without people ahead; then a screenshot of each."""
        await self.r.synced()
        for lang, page in self.pages.items():
            await page.locator(f"[data-testid=ticket][data-phase={phase}]").wait_for(
                timeout=10_000)
            text = await page.get_by_test_id("state").inner_text()
            assert has[lang] in text, (lang, text)
            body = await page.locator("main").inner_text()
            assert not any(b in body for b in BLAME), (lang, body)
            assert "開いている窓口がありません" not in body
            assert "No counter open" not in body
            assert "0人" not in body
            assert await page.evaluate("document.documentElement.scrollWidth") <= 390
            SHOTS.mkdir(parents=True, exist_ok=True)
            await page.screenshot(path=str(SHOTS / f"phone-{name}-{lang}.png"), full_page=True)


async def decode_qr(page: Page) -> str:
    qr = page.get_by_test_id("checkin-qr")
    await qr.wait_for()
    box = await qr.bounding_box()
    assert box is not None
    assert box["width"] >= 200, box  # large enough to scan off a phone
    found = decode(Image.open(io.BytesIO(await qr.screenshot())))
    assert len(found) == 1, found
    return str(found[0].data.decode())


@pytest.mark.slow
async def test_web_ticket_checks_in_with_its_phone_qr_and_is_called(
        mqtt_broker_url: str, tmp_path: Path, browser: Browser,
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(webticket_support, "web_toml", named_toml)
    async with rig(mqtt_broker_url, tmp_path, {"MADOGUCHI_WEBTICKET_POW_BITS": "8"},
                   monkeypatch) as r:
        writer = r.edge.writer
        ctx = await browser.new_context(**PHONE)
        page = await ctx.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda e: errors.append(str(e)))
        await page.goto(f"{r.hub.url}/w/{r.site}/B?lang=ja")
        lead = await page.locator("main").inner_text()
        assert "窓口" not in lead  # an office is 事務所 to residents
        assert "Web番号札" in lead
        SHOTS.mkdir(parents=True, exist_ok=True)
        await page.screenshot(path=str(SHOTS / "webticket-page-ja.png"), full_page=True)
        await page.get_by_role("button", name="番号札を取る").tap()
        await page.wait_for_url(re.compile(r"/t/[A-Za-z0-9_-]+"), timeout=20_000)
        m = re.search(r"/t/([A-Za-z0-9_-]+)", page.url)
        assert m is not None
        token = m.group(1)
        payload = await decode_qr(page)
        assert payload.endswith(f"/t/{token}"), payload
        rule = await page.get_by_test_id("checkin-rule").inner_text()
        assert "30分" in rule
        assert "発券機" in rule
        await page.close()

        phones = Phones(ctx, r)
        await phones.open(token)
        await phones.phase("checkin_before", "1-waiting", has={
            "ja": "発券機でこのQRコードを読み取って", "en": "scan this QR code"})
        assert await phones.pages["en"].get_by_test_id("ahead").inner_text() == "0"

        # a walk-in behind it; counter 1 opens and calls: the web ticket is deferred
        walk_in = (await writer.execute(Issue("B"))).events[0].data
        await writer.execute(OpenCounter("1"))
        out = await writer.execute(CallNext("1"))
        assert [e.type for e in out.events] == ["TicketDeferred", "TicketCalled"]
        assert out.events[-1].data["ticket"] == walk_in["ticket"]
        await phones.phase("deferred", "2-deferred", has={
            "ja": "順番が来ました。10:30までに", "en": "Your turn has come"})

        # the holder arrives: the decoded QR, typed by the kiosk's scanner
        kiosk = await browser.new_page(viewport={"width": 1080, "height": 1920})
        await kiosk.goto(f"{r.edge_url}/ui/kiosk.html?kiosk=k1")
        await kiosk.wait_for_selector("body[data-ready=true]", state="attached")
        await scan(kiosk, payload)
        result = kiosk.get_by_test_id("checkin-result")
        await result.and_(kiosk.locator("[data-outcome=checked_in]")).wait_for(timeout=10_000)
        SHOTS.mkdir(parents=True, exist_ok=True)
        await kiosk.screenshot(path=str(SHOTS / "kiosk-checked-in.png"))
        tid = writer.state.tokens[token]
        assert writer.state.tickets[tid].checked_in_at is not None
        await phones.phase("next", "3-checked-in", has={
            "ja": "次にお呼びします", "en": "You are next"})
        for p in phones.pages.values():
            assert await p.get_by_test_id("checkin-qr").is_hidden()

        await writer.execute(CallNext("1"))
        assert writer.state.tickets[tid].state == "called"
        await phones.phase("called", "4-called", has={
            "ja": "1番窓口へお越しください", "en": "Please go to Counter 1"})
        await writer.execute(Finish("1"))
        await phones.phase("finished", "5-finished", has={
            "ja": "受付が終わりました", "en": "Done"})

        # a second web ticket, never checked in: deferred, then absent after the grace
        status, body = await post_ticket(r)
        assert status == 201, body
        second = body["token"]
        assert second in writer.state.tokens  # 201 comes once the site has issued it
        await r.synced()
        other = (await writer.execute(Issue("B"))).events[0].data
        out = await writer.execute(CallNext("1"))
        assert out.events[-1].data["ticket"] == other["ticket"]
        phones2 = Phones(ctx, r)
        await phones2.open(second)
        await phones2.phase("deferred", "6-second-deferred", has={
            "ja": "順番が来ました", "en": "Your turn has come"})
        r.clock.advance(31 * 60)
        await writer.execute(Issue("B"))
        out = await writer.execute(CallNext("1"))
        assert out.events[0].type == "TicketAbsent"
        assert out.events[0].data["reason"] == "not_checked_in"
        await phones2.phase("checkin_over", "7-second-after-grace", has={
            "ja": "そのままにしておける時間が過ぎました",
            "en": "The time we kept your turn has passed"})
        for p in phones2.pages.values():  # the QR still checks in (behind everyone waiting)
            assert await p.get_by_test_id("checkin-qr").is_visible()
        assert errors == []
        await kiosk.close()
        await ctx.close()


async def post_ticket(r: Rig) -> tuple[int, Any]:
    async with aiohttp.ClientSession() as s, s.post(
            f"{r.hub.url}/api/web-tickets", json=r.body(contact=None),
            headers={"X-Forwarded-For": "10.0.0.2"}) as resp:
        return resp.status, await resp.json()
