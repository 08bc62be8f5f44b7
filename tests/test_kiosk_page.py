"""The kiosk page (Q2–Q5) in headless Chromium against an edge running in this process.

Menus follow the schedule (Saturday included; outside every window the default menu, never the
staff-only busy-season one) and staff's choice live, and their names (for staff) never reach the
visitor's screen; "ask staff" help is always on the main screen; zh/ko visitors read English
where a site text has no zh/ko; the language goes back to Japanese after
``lang_reset_seconds`` without a touch; closed and full services are shown and explained; a
printer out of paper is announced before anyone taps and the number stays on screen; a web
ticket checks in by a keyboard-wedge scan; the page works by keyboard and says when it is
offline. The full end-to-end suite (operator, monitors, axe) lives in test_screens_*.py.
"""

from __future__ import annotations

import asyncio
import re
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from browser.support import scan
from conftest import free_port
from playwright.async_api import Browser, Page, Route, async_playwright, expect

from edge.app import Edge, build_edge, start_edge
from edge.config import load_site_config
from edge.devices.transport.sim import SIMS, sim_device
from edge.domain.clock import ManualClock
from edge.domain.commands import OpenCounter
from edge.web.live import LIVE

TZ = ZoneInfo("Asia/Tokyo")
MONDAY_10 = datetime(2026, 11, 30, 10, 0, tzinfo=TZ)  # 11/23 is a holiday
MONDAY_1730 = datetime(2026, 11, 30, 17, 30, tzinfo=TZ)
SATURDAY_10 = datetime(2026, 11, 28, 10, 0, tzinfo=TZ)
SATURDAY_18 = datetime(2026, 11, 28, 18, 0, tzinfo=TZ)
SUNDAY_3 = datetime(2026, 11, 29, 3, 0, tzinfo=TZ)
MENU_NAMES = ("メニュー", "通常", "夜間窓口", "土曜窓口", "繁忙期", "Regular", "Evening",
              "Busy season", "Menu")
SITES = Path(__file__).resolve().parent.parent / "sites"
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts" / "kiosk"
PRINTER = "kiosk-page-printer-k1"
STATUS_URL = "https://queue.example.jp/t/{token}"

SITE = """
[site]
access = "open"  # these tests are about the queue; sign-in: tests/edge/test_edge_access.py
id = "kiosk-page"
name = { ja = "練馬区民事務所", en = "Nerima Office", zh = "练马区民事务所", ko = "네리마" }
status_url = "https://queue.example.jp/t/{token}"
guidance = { ja = "ご用件のボタンを押してください。", en = "Touch the button for your errand." }
lang_reset_seconds = 10

[[services]]
code = "A"
name = { ja = "住民異動届", en = "Moving in / out", zh = "迁入・迁出申报", ko = "전입・전출 신고" }
range = [1, 99]
ticket = "two-part"

[[services]]
code = "B"
name = { ja = "証明書発行", en = "Certificates", zh = "证明书发行", ko = "증명서 발급" }
range = [101, 199]
web = { from = "00:00", to = "24:00" }  # web tickets all day (the tests run at any hour)

[[services]]
code = "M"
name = { ja = "マイナンバーカード", en = "My Number card" }
range = [401, 499]
daily_limit = 1

[[services]]
code = "T"
name = { ja = "住民異動 2次受付", en = "Moving: second reception" }
range = [801, 899]
kiosk = false

[[counters]]
id = "1"
name = { ja = "1番窓口", en = "Counter 1" }
services = ["A", "B", "M", "T"]

[[menus]]
id = "day"
name = { ja = "通常", en = "Regular" }
services = ["A", "B", "M"]
schedule = [{ days = ["mon", "tue", "wed", "thu", "fri"], from = "08:30", to = "17:15" }]
default = true

[[menus]]
id = "evening"
name = { ja = "夜間窓口", en = "Evening" }
services = ["B"]
guidance = { ja = "夜間は証明書発行のみです。", en = "Evenings: certificates only." }
schedule = [{ days = ["mon", "tue", "wed", "thu", "fri"], from = "17:15", to = "19:00" }]

[[menus]]
id = "saturday"
name = { ja = "土曜窓口", en = "Saturday" }
services = ["A", "B"]
schedule = [{ days = ["sat"], from = "09:00", to = "17:00" }]
guidance.ja = "土曜日は住民異動届と証明書発行のみです。"
guidance.en = "Saturdays: moving and certificates only."

[[menus]]
id = "busy"
name = { ja = "繁忙期", en = "Busy season" }
services = ["M"]
guidance.ja = "混雑のため、マイナンバーカードのみ受け付けます。"
guidance.en = "Busy today: My Number cards only."

[[devices]]
id = "printer-k1"
kind = "printer"
profile = "epson-tm-t88vi"
url = "sim://kiosk-page-printer-k1"
kiosk = "k1"
"""


@dataclass
class Kiosk:
    edge: Edge
    clock: ManualClock
    url: str
    http: aiohttp.ClientSession
    browser: Browser
    errors: list[str] = field(default_factory=list)

    async def post(self, path: str, body: Any = None, status: int = 200) -> dict[str, Any]:
        async with self.http.post(path, json=body) as r:
            data: dict[str, Any] = await r.json()
            assert r.status == status, (path, r.status, data)
            return data

    async def open(self, query: str = "kiosk=k1", *, clock: bool = False,
                   width: int = 1080, height: int = 1920) -> Page:
        page = await self.browser.new_page(viewport={"width": width, "height": height})
        page.on("pageerror", lambda exc: self.errors.append(str(exc)))
        if clock:
            await page.clock.install()
        await page.goto(f"{self.url}/ui/kiosk.html?{query}")
        await page.wait_for_selector("body[data-ready=true]", state="attached")
        return page

    def issued(self, code: str) -> int:
        return sum(1 for e in self.edge.writer.store.events()
                   if e.type == "TicketIssued" and e.data["service"] == code)


@asynccontextmanager
async def running(tmp_path: Path, chromium_path: Path, site: Path,
                  start: datetime) -> AsyncIterator[Kiosk]:
    """An edge for ``site`` on a manual clock at ``start``, and a browser."""
    SIMS.clear()
    clock = ManualClock(start)
    edge = build_edge(load_site_config(site), tmp_path / "edge.db", clock)
    port = free_port()
    runner = await start_edge(edge, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(base_url=url) as http, async_playwright() as pw:
            browser = await pw.chromium.launch(executable_path=str(chromium_path))
            k = Kiosk(edge, clock, url, http, browser)
            try:
                yield k
            finally:
                await browser.close()
            assert not k.errors, k.errors
    finally:
        await runner.cleanup()


@pytest.fixture
async def kiosk(tmp_path: Path, chromium_path: Path) -> AsyncIterator[Kiosk]:
    path = tmp_path / "site.toml"
    path.write_text(SITE, encoding="utf-8")
    async with running(tmp_path, chromium_path, path, MONDAY_10) as k:
        yield k


def number(n: int) -> re.Pattern[str]:
    return re.compile(rf"^\s*{n}\s*$")


async def no_menu_name(page: Page) -> None:
    """Menu names are for staff: nowhere in the visitor's page, visible or not."""
    await expect(page.get_by_test_id("menu-name")).to_have_count(0)
    html = await page.content()
    text = await page.locator("body").inner_text()
    for name in MENU_NAMES:
        assert name not in text, name
        assert name not in html, name


async def at(kiosk: Kiosk, when: datetime) -> None:
    """Move the edge's clock; the edge pushes its state (as its schedule check does)."""
    kiosk.clock.set(when)
    kiosk.edge.app[LIVE].poke()


async def shows(page: Page, codes: str) -> None:
    """Exactly these service buttons, in this order."""
    buttons = page.locator("#services > .svc")
    await expect(buttons).to_have_count(len(codes))
    assert [await b.get_attribute("data-code") for b in await buttons.all()] == list(codes)


async def test_menu_follows_the_schedule_and_staff_choice(kiosk: Kiosk) -> None:
    page = await kiosk.open()
    by = page.get_by_test_id
    await shows(page, "ABM")  # weekday daytime: the regular menu
    await expect(by("service-T")).to_have_count(0)  # second stage only: never on the kiosk
    await expect(by("guidance")).to_have_text("ご用件のボタンを押してください。")
    await expect(by("waiting-B")).to_have_text(number(0))
    await expect(by("ask-staff")).to_be_visible()
    await expect(by("ask-staff")).to_have_text("わからないことは係員にお声がけください")
    await no_menu_name(page)

    # 17:30 on a weekday: the evening menu, as soon as the edge pushes its state
    kiosk.clock.set(MONDAY_1730)
    await kiosk.post("/api/tickets", {"service": "B"}, 201)
    await shows(page, "B")
    await expect(by("guidance")).to_have_text("夜間は証明書発行のみです。")
    await expect(by("waiting-B")).to_have_text(number(1))
    label = await by("service-B").get_attribute("aria-label")
    assert label is not None
    assert label.startswith("B 証明書発行, 1 人待ち"), label
    await no_menu_name(page)

    # Saturday during opening hours: the Saturday menu, not the busy season's
    await at(kiosk, SATURDAY_10)
    await shows(page, "AB")
    await expect(by("guidance")).to_have_text("土曜日は住民異動届と証明書発行のみです。")
    await expect(by("ask-staff")).to_be_visible()
    await no_menu_name(page)
    # outside every schedule (Saturday evening, a Sunday night): the default (regular) menu
    for when in (SATURDAY_18, SUNDAY_3):
        await at(kiosk, when)
        await shows(page, "ABM")
        await expect(by("guidance")).to_have_text("ご用件のボタンを押してください。")

    # staff choose the busy season by hand, then hand back to the schedule
    await kiosk.post("/api/kiosk/menu", {"menu": "busy"})
    await shows(page, "M")
    await expect(by("guidance")).to_have_text("混雑のため、マイナンバーカードのみ受け付けます。")
    await no_menu_name(page)
    await at(kiosk, SATURDAY_10)  # a chosen menu stays whatever the schedule says
    await shows(page, "M")
    await kiosk.post("/api/kiosk/menu", {"menu": None})
    await shows(page, "AB")
    assert await page.evaluate("performance.getEntriesByType('navigation').length") == 1


async def test_zh_and_ko_fall_back_to_english_site_texts(kiosk: Kiosk) -> None:
    """Service names and guidance without a zh/ko text show in English (marked lang="en"),
    never in Japanese; the page's own texts are in the visitor's language."""
    page = await kiosk.open("kiosk=k1&lang=zh")
    by = page.get_by_test_id
    await expect(page.locator("html")).to_have_attribute("lang", "zh")
    await expect(by("service-B").locator(".svc-name")).to_have_text("证明书发行")
    await expect(by("service-B").locator(".svc-name")).to_have_attribute("lang", "zh")
    await expect(by("service-M").locator(".svc-name")).to_have_text("My Number card")
    await expect(by("service-M").locator(".svc-name")).to_have_attribute("lang", "en")
    await expect(by("guidance")).to_have_text("Touch the button for your errand.")
    await expect(by("guidance")).to_have_attribute("lang", "en")
    await expect(by("ask-staff")).to_have_text("如有不明之处，请咨询附近的工作人员。")
    await by("lang-ko").click()
    await expect(by("service-A").locator(".svc-name")).to_have_text("전입・전출 신고")
    await expect(by("service-M").locator(".svc-name")).to_have_text("My Number card")
    await expect(by("ask-staff")).to_contain_text("직원")
    await by("lang-ja").click()
    await expect(by("service-M").locator(".svc-name")).to_have_attribute("lang", "ja")
    await expect(by("guidance")).to_have_attribute("lang", "ja")
    await kiosk.post("/api/counters/1/open")  # an open counter: estimates appear
    await by("lang-en").click()  # glossary terms: "Estimated wait", never "Wait soon"
    await expect(by("estimate-A")).to_have_text(
        re.compile(r"^Estimated wait: (up to about \d+ min|under a minute)$"))
    await expect(by("services")).not_to_contain_text("Wait soon")


async def test_language_switches_and_resets_to_japanese_when_idle(kiosk: Kiosk) -> None:
    page = await kiosk.open(clock=True)
    by = page.get_by_test_id
    await expect(by("service-A")).to_contain_text("住民異動届")
    for lang, own in (("ja", "日本語"), ("en", "English"), ("zh", "中文"), ("ko", "한국어")):
        await expect(by(f"lang-{lang}")).to_have_text(own)  # each language names itself
    await by("lang-en").click()
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(by("service-A")).to_contain_text("Moving in / out")
    await expect(by("guidance")).to_have_text("Touch the button for your errand.")
    await expect(by("lang-en")).to_have_attribute("aria-pressed", "true")

    await page.clock.fast_forward(6000)
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await by("webticket-button").click()  # a touch: the idle time starts again
    await expect(by("checkin-help")).to_contain_text("QR")
    await page.clock.fast_forward(6000)
    await expect(page.locator("html")).to_have_attribute("lang", "en")
    await expect(by("checkin-help")).to_be_visible()
    # 10 s (lang_reset_seconds) without a touch: Japanese again, panels closed
    await page.clock.fast_forward(5000)
    await expect(page.locator("html")).to_have_attribute("lang", "ja")
    await expect(by("checkin-help")).to_have_count(0)
    await expect(by("service-A")).to_contain_text("住民異動届")
    await expect(by("lang-ja")).to_have_attribute("aria-pressed", "true")


async def test_closed_and_full_services_are_shown_and_explained(kiosk: Kiosk) -> None:
    page = await kiosk.open()
    by = page.get_by_test_id
    await kiosk.post("/api/tickets", {"service": "M"}, 201)  # daily_limit = 1: now full
    await expect(by("service-M")).to_have_attribute("aria-disabled", "true")
    await expect(by("status-M")).to_have_text("本日分終了（定員）")  # words, not colour alone
    await expect(by("status-M").locator("svg")).to_have_count(1)  # and an icon
    await by("service-M").click(force=True)
    await expect(by("service-unavailable")).to_contain_text("上限")
    await expect(by("ticket-result")).to_have_count(0)
    assert kiosk.issued("M") == 1
    await by("dialog-close").click()
    await expect(by("service-A")).to_have_attribute("aria-disabled", "false")

    await kiosk.post("/api/day/close")
    await expect(by("day-closed")).to_be_visible()
    for code in ("A", "B"):
        await expect(by(f"service-{code}")).to_have_attribute("aria-disabled", "true")
        await expect(by(f"status-{code}")).to_have_text("受付終了")
    await by("lang-en").click()
    await expect(by("status-A")).to_have_text("Closed")
    await by("service-A").click(force=True)
    await expect(by("service-unavailable")).to_contain_text("not taking numbers")
    assert kiosk.issued("A") == 0


async def test_paper_out_is_announced_and_the_number_stays_on_screen(kiosk: Kiosk) -> None:
    page = await kiosk.open()
    by = page.get_by_test_id
    await expect(by("printer-banner")).to_be_hidden()
    await by("service-A").click()
    await expect(by("print-status")).to_have_attribute("data-printed", "true")
    await expect(by("print-status")).to_contain_text("番号札をお取りください")
    await by("ticket-result").click()  # a tap anywhere closes a printed ticket's panel
    await expect(by("ticket-result")).to_have_count(0)

    sim_device(PRINTER).faults.paper_out = True
    async with page.expect_response(lambda r: r.url.endswith("/api/tickets")) as info:
        await by("service-B").click()
    data = await (await info.value).json()
    assert data["print"]["printed"] is False
    assert data["print"]["reason"] == "paper_out"
    await expect(by("ticket-result")).to_have_attribute("data-outcome", "not_printed")
    await expect(by("ticket-number")).to_have_text(number(data["ticket"]["number"]))
    status = by("print-status")
    await expect(status).to_have_attribute("data-printed", "false")
    await expect(status).to_contain_text("用紙切れ")
    await expect(status).to_contain_text("係員にお見せください")
    await by("ticket-result").click()  # not printed: only the button closes it
    await expect(by("ticket-result")).to_be_visible()
    await by("dialog-close").click()

    # the next visitor is told before tapping (device state pushed, no reload)
    banner = by("printer-banner")
    await expect(banner).to_have_attribute("data-reason", "paper_out")
    await expect(banner).to_contain_text("用紙切れ")
    await by("lang-en").click()
    await expect(banner).to_contain_text("out of paper")

    sim_device(PRINTER).faults.paper_out = False
    sim_device(PRINTER).faults.paper_near_end = True
    await by("service-B").click()
    await expect(by("print-status")).to_have_attribute("data-printed", "true")
    await by("dialog-close").click()
    await expect(banner).to_have_attribute("data-level", "note")  # a mild note for staff
    await expect(banner).to_contain_text("For staff")


async def test_web_ticket_checks_in_by_scan(kiosk: Kiosk) -> None:
    page = await kiosk.open()
    by = page.get_by_test_id
    web = await kiosk.post("/api/tickets", {"service": "B", "channel": "web"}, 201)
    url = STATUS_URL.format(token=web["ticket"]["token"])
    await by("service-A").focus()  # a scan's Enter must not press the focused button
    await scan(page, url)
    result = by("checkin-result")
    await expect(result).to_have_attribute("data-outcome", "checked_in")
    await expect(by("checkin-number")).to_have_text(number(web["ticket"]["number"]))
    assert kiosk.issued("A") == 0
    assert [e.type for e in kiosk.edge.writer.store.events()][-1] == "TicketCheckedIn"
    await by("dialog-close").click()

    await by("lang-en").click()
    await scan(page, url)
    await expect(result).to_have_attribute("data-outcome", "refused")
    await expect(by("checkin-error")).to_have_attribute("data-code", "already_checked_in")
    await expect(result).to_contain_text("already checked in")
    await by("dialog-close").click()

    here = await kiosk.post("/api/tickets", {"service": "A"}, 201)
    await scan(page, here["ticket"]["token"])  # a bare token works too
    await expect(by("checkin-error")).to_have_attribute("data-code", "not_remote")
    await by("dialog-close").click()
    await scan(page, "https://example.com/not-a-ticket")
    await expect(by("checkin-error")).to_have_attribute("data-code", "bad_code")
    await by("dialog-close").click()

    await by("webticket-button").click()
    await expect(by("checkin-help")).to_contain_text("scanner")


async def test_keyboard_use_without_printer_and_offline(kiosk: Kiosk) -> None:
    page = await kiosk.open("", width=1920, height=1080)  # no kiosk id: no printer
    by = page.get_by_test_id
    # the route is in place from the start (registering it late raced with the key press once)
    edge_down = {"now": False}

    async def tickets_route(route: Route) -> None:
        await (route.abort() if edge_down["now"] else route.continue_())

    await page.route("**/api/tickets", tickets_route)
    await expect(by("printer-banner")).to_have_attribute("data-reason", "no_printer")
    for _ in range(10):  # Tab from the top reaches the first service button
        await page.keyboard.press("Tab")
        if await by("service-A").evaluate("el => el === document.activeElement"):
            break
    else:
        raise AssertionError("Tab never reached service A")
    await page.keyboard.press("Enter")
    await expect(by("print-status")).to_have_attribute("data-reason", "no_printer")
    await expect(by("print-status")).to_contain_text("プリンタがない")
    await expect(by("ticket-number")).to_have_text(number(1))
    await page.keyboard.press("Escape")
    await expect(by("ticket-result")).to_have_count(0)
    assert await by("service-A").evaluate("el => el === document.activeElement")
    await expect(by("announce")).to_contain_text("1")

    # the edge cannot be reached: say so, no number is invented
    edge_down["now"] = True
    await page.keyboard.press("Enter")
    await expect(by("ticket-result")).to_have_attribute("data-outcome", "offline")
    await expect(by("ticket-result")).to_contain_text("発行されていません")
    await expect(by("ticket-number")).to_have_count(0)


SHOTS = [("ja", 1080, 1920), ("en", 1080, 1920), ("zh", 1080, 1920), ("ko", 1080, 1920),
         ("ja", 1920, 1080), ("en", 1920, 1080)]


@pytest.mark.slow  # twelve pages against the full main-office sample
@pytest.mark.parametrize(("when", "codes"), [(MONDAY_10, "ABCDM"), (SATURDAY_10, "ABM")],
                         ids=["weekday", "saturday"])
async def test_sample_kiosk_fits_its_screens(tmp_path: Path, chromium_path: Path,
                                             when: datetime, codes: str) -> None:
    """The main office's sample (long service names) at the kiosk's sizes and languages:
    nothing leaves the screen or is cut, the help line is large; screenshots for people to
    look at go to test-artifacts/kiosk/."""
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    async with running(tmp_path, chromium_path, SITES / "nerima-main.toml", when) as kiosk:
        for cid in ("1", "2", "3", "4"):  # the sample's counters need a PIN over HTTP
            await kiosk.edge.writer.execute(OpenCounter(cid))
        for code in codes * 3:
            await kiosk.post("/api/tickets", {"service": code}, 201)
        for lang, width, height in SHOTS:
            page = await kiosk.open(f"kiosk=k1&lang={lang}", width=width, height=height)
            await shows(page, codes)
            await expect(page.get_by_test_id(f"waiting-{codes[-1]}")).to_have_text(number(3))
            await no_menu_name(page)
            name = f"kiosk-{when:%a}-{lang}-{width}x{height}.png".lower()
            await page.screenshot(path=str(ARTIFACTS / name))  # before the checks: look at it
            boxes = await page.evaluate("""() => [...document.querySelectorAll(
                '.svc, .svc-name, .svc-meta, #ask-staff, #webticket, #guidance, .top, .lang')]
                .map((el) => { const r = el.getBoundingClientRect();
                  return { what: el.id || el.className, l: r.left, t: r.top, r: r.right,
                           b: r.bottom, cut: el.scrollWidth > el.clientWidth + 1 }; })""")
            for box in boxes:
                assert min(box["l"], box["t"]) >= 0, (lang, width, box)
                assert box["r"] <= width, (lang, width, box)
                assert box["b"] <= height, (lang, width, box)
                assert not box["cut"], (lang, width, box)
            assert await page.get_by_test_id("services").evaluate(
                "el => el.scrollHeight <= el.clientHeight + 1"), (lang, width)  # no scrolling
            help_px = await page.get_by_test_id("ask-staff").evaluate(
                "el => parseFloat(getComputedStyle(el).fontSize)")
            assert help_px >= 0.03 * min(width, height), help_px  # about 4 mm per line or more
            await page.close()


@pytest.mark.parametrize(("when", "ja", "en"), [
    (datetime(2026, 11, 23, 10, 0, tzinfo=TZ), "祝日（勤労感謝の日）", "national holiday"),
    (datetime(2026, 12, 31, 10, 0, tzinfo=TZ), "年末年始", "New Year holidays"),
])
async def test_a_holiday_or_the_year_end_closes_the_kiosk(
        tmp_path: Path, chromium_path: Path, when: datetime, ja: str, en: str) -> None:
    """The ward's calendar (issue 13): the kiosk says why it is closed, every service shows
    closed, and a tap issues nothing; decided by the edge alone (no hub in this test)."""
    path = tmp_path / "site.toml"
    path.write_text(SITE, encoding="utf-8")
    async with running(tmp_path, chromium_path, path, when) as k:
        page = await k.open()
        banner = page.get_by_test_id("day-closed")
        await expect(banner).to_be_visible()
        await expect(banner).to_contain_text(ja)
        buttons = page.locator("#services > .svc")
        await expect(buttons.first).to_be_visible()
        for b in await buttons.all():
            await expect(b).to_have_attribute("data-status", "closed")
        await expect(buttons.first).to_be_disabled()
        shots = Path("test-artifacts/kiosk")
        await asyncio.to_thread(shots.mkdir, parents=True, exist_ok=True)
        await page.screenshot(path=str(shots / f"closed-{when.date()}.png"))
        async with k.http.post("/api/tickets", json={"service": "A"}) as r:  # as a tap would
            assert (r.status, (await r.json())["error"]["code"]) == (409, "office_closed")
        assert sum(k.issued(code) for code in "ABCDM") == 0
        page_en = await k.open("kiosk=k1&lang=en")
        await expect(page_en.get_by_test_id("day-closed")).to_contain_text(en)


async def test_two_kiosks_of_one_site_offer_their_own_menus(tmp_path: Path,
                                                           chromium_path: Path) -> None:
    """Per-kiosk menus (issue 13, the ward's 2nd floor): 戸籍第一係's kiosk offers its
    services, the bereavement corner's kiosk only its own, from one edge."""
    site = SITES / "ward" / "honcho-2f-koseki1.toml"
    async with running(tmp_path, chromium_path, site, MONDAY_10) as k:
        first = await k.open("kiosk=k1")
        corner = await k.open("kiosk=k2")
        await shows(first, "DK")
        await shows(corner, "O")
        await expect(corner.get_by_test_id("service-O")).to_contain_text("おくやみ")
