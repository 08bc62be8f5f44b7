"""Guide monitor, counter display, backyard monitor, discovery and landing pages in headless
Chromium, against an edge running in this test's process (so the clock, simulated printer
faults and the discovered edges can be set from here).

What is checked: calls reach the monitor and the counter display without a reload; the newest
call is the first row, highlighted and announced; recalls chime (generated in the browser), are
marked in words and blink; absent numbers and the second-wait count show, every waiting visitor
counted once; subtitles rotate; the ticker stands still under prefers-reduced-motion; the
backyard counts waits and serving times up every second and marks thresholds with words; device
reasons are shown in the chosen language; discovered edges are listed. Screens are saved to
``test-artifacts/monitor-pages/``.
"""

from __future__ import annotations

import asyncio
import json
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from aiohttp import web
from conftest import free_port
from playwright.async_api import Browser, Locator, Page, async_playwright, expect
from support import TZ, morning

from edge.app import Edge, build_edge, start_edge
from edge.config import load_site_config
from edge.devices.transport.sim import SIMS, sim_device
from edge.domain.clock import ManualClock
from edge.web.discovery import DISCOVERY, Discovery
from edge.web.live import LIVE

REPO_ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = REPO_ROOT / "test-artifacts" / "monitor-pages"
I18N = REPO_ROOT / "kiosk-ui" / "i18n"
PRINTER_SIM = "mp-printer-k1"

SITE = """
[site]
access = "open"  # these tests are about the queue; sign-in: tests/edge/test_edge_access.py
id = "mp-site"
status_url = "https://queue.example.jp/t/{token}"

[site.name]
ja = "練馬区民事務所"
en = "Nerima Residents Office"
zh = "练马区民事务所"
ko = "네리마 구민사무소"

[[services]]
code = "A"
name = { ja = "住民異動届", en = "Moving in / out", zh = "迁入・迁出申报", ko = "전입・전출 신고" }
range = [1, 99]
ticket = "two-part"

[[services]]
code = "B"
name = { ja = "証明書発行", en = "Certificates", zh = "证明书发行", ko = "증명서 발급" }
range = [101, 199]

[[services]]
code = "T"
name = { ja = "住民異動 2次受付", en = "Moving: second reception", zh = "住民迁移 第二次受理" }
range = [801, 899]
kiosk = false

[[counters]]
id = "1"
name = { ja = "1番窓口", en = "Counter 1", zh = "1号窗口", ko = "1번 창구" }
services = ["A", "B"]

[[counters]]
id = "2"
name = { ja = "2番窓口", en = "Counter 2", zh = "2号窗口", ko = "2번 창구" }
services = ["T"]

[[counters]]
id = "3"
name = { ja = "3番窓口", en = "Counter 3", zh = "3号窗口", ko = "3번 창구" }
services = ["B", "A"]

[[notices]]
[notices.text]
ja = "マイナンバーカードの交付は予約制です。"
en = "My Number card pick-up is by reservation."
zh = "个人编号卡的领取需要预约。"
ko = "마이넘버 카드 교부는 예약제입니다."

[[devices]]
id = "printer-k1"
kind = "printer"
profile = "epson-tm-t88vi"
url = "sim://mp-printer-k1"
kiosk = "k1"
"""


def texts(page: str, lang: str) -> dict[str, str]:
    data: dict[str, str] = json.loads((I18N / page / f"{lang}.json").read_text("utf-8"))
    return data


def number_re(n: int | str) -> re.Pattern[str]:
    """The number as a whole token (1 must not match 101)."""
    return re.compile(rf"(?<![0-9]){n}(?![0-9])")


@dataclass
class Tab:
    page: Page
    loads: int = 0

    def by(self, testid: str) -> Locator:
        return self.page.get_by_test_id(testid)

    async def shoot(self, name: str) -> None:
        ARTIFACTS.mkdir(parents=True, exist_ok=True)
        await self.page.screenshot(path=str(ARTIFACTS / f"{name}.png"))


@dataclass
class Site:
    edge: Edge
    clock: ManualClock
    url: str
    http: aiohttp.ClientSession
    browser: Browser
    discovery: Discovery
    runner: web.AppRunner
    errors: list[str] = field(default_factory=list)
    stopped: bool = False

    async def stop(self) -> None:
        """The edge goes away (websockets closed, port no longer listening)."""
        if not self.stopped:
            self.stopped = True
            for listening in list(self.runner.sites):
                await listening.stop()  # no reconnects from here on
            await self.edge.app[LIVE].close_all()
            await self.runner.cleanup()

    async def open(self, path: str, size: tuple[int, int] = (1920, 1080), *,
                   reduced_motion: bool = False, wait_for: str | None = None) -> Tab:
        context = await self.browser.new_context(
            viewport={"width": size[0], "height": size[1]},
            reduced_motion="reduce" if reduced_motion else "no-preference")
        page = await context.new_page()
        tab = Tab(page)

        def on_nav(frame: Any) -> None:
            if frame == page.main_frame:
                tab.loads += 1

        def on_response(resp: Any) -> None:
            if resp.status >= 400 and "/ui/" in resp.url:
                self.errors.append(f"{resp.status} {resp.url}")

        page.on("pageerror", lambda exc: self.errors.append(f"{path}: {exc}"))
        page.on("framenavigated", on_nav)
        page.on("response", on_response)
        await page.goto(self.url + path)
        if wait_for is not None:
            await tab.by(wait_for).first.wait_for(state="visible")
        return tab

    async def post(self, path: str, body: Any = None, status: int = 200) -> dict[str, Any]:
        async with self.http.post(path, json=body) as r:
            data: dict[str, Any] = await r.json()
            assert r.status == status, (path, data)
            return data

    async def issue(self, service: str) -> int:
        data = await self.post("/api/tickets", {"service": service, "kiosk": "k1", "lang": "ja"},
                               201)
        number: int = data["ticket"]["number"]
        return number


@pytest.fixture
async def site(tmp_path: Path, chromium_path: Path) -> AsyncIterator[Site]:
    SIMS.clear()
    path = tmp_path / "site.toml"
    path.write_text(SITE, encoding="utf-8")
    config = load_site_config(path)
    clock = ManualClock(morning())
    edge = build_edge(config, tmp_path / "e.db", clock)
    port = free_port()
    # discovery without multicast: the test fills in what zeroconf would have found
    discovery = Discovery(config.site, "mp", "127.0.0.1", port)
    edge.app[DISCOVERY] = discovery
    runner = await start_edge(edge, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    async with async_playwright() as pw, aiohttp.ClientSession(base_url=url) as http:
        browser = await pw.chromium.launch(
            executable_path=str(chromium_path),
            args=["--autoplay-policy=no-user-gesture-required"])
        s = Site(edge, clock, url, http, browser, discovery, runner)
        try:
            yield s
        finally:
            await browser.close()
            await s.stop()
    assert not s.errors, s.errors


# --- guide monitor ---------------------------------------------------------------------------

async def test_monitor_follows_calls_highlights_announces_and_chimes(site: Site) -> None:
    ja = texts("monitor", "ja")
    mon = await site.open("/ui/monitor.html?voice=1", wait_for="waiting-A")
    await expect(mon.page.locator("body")).to_have_attribute("data-sound", "on")
    first = await site.issue("A")
    second = await site.issue("A")
    await expect(mon.by("waiting-A")).to_have_text("2")

    await site.post("/api/counters/1/open")
    await site.post("/api/counters/1/call-next")
    tile = mon.by("call-1")
    await expect(tile).to_contain_text(number_re(first))
    await expect(tile).to_contain_text("1番窓口")
    await expect(tile).to_have_class(re.compile(r"\bnewest\b"))
    await expect(mon.by("calling")).to_contain_text(number_re(first))
    await expect(mon.by("recent")).not_to_contain_text(number_re(first))  # shown once, big
    await expect(mon.by("announce")).to_contain_text(f"{first}番の方、1番窓口へ")
    await expect(mon.by("waiting-A")).to_have_text("1")
    await expect(mon.page.locator("body")).to_have_attribute("data-chimes", "1")

    # a recall chimes again and says so in words
    await site.post("/api/counters/1/recall")
    await expect(mon.page.locator("body")).to_have_attribute("data-chimes", "2")
    await expect(tile).to_contain_text(ja["monitor.recall"])
    await expect(tile).to_have_class(re.compile(r"\brecalled\b"))
    await expect(tile).to_have_attribute("aria-label", re.compile(r"^再呼出"))

    # another counter's call becomes the newest; counter 1 keeps its tile
    await site.post("/api/counters/3/open")
    await site.post("/api/counters/3/call-next")
    await expect(mon.by("call-3")).to_contain_text(number_re(second))
    await expect(mon.by("call-3")).to_have_class(re.compile(r"\bnewest\b"))
    await expect(tile).not_to_have_class(re.compile(r"\bnewest\b"))
    rows = mon.page.locator('[data-testid="calling"] > li')
    await expect(rows).to_have_count(2)
    await expect(rows.first).to_have_attribute("data-testid", "call-3")  # newest first
    await expect(mon.by("waiting-A")).to_have_text("0")
    await mon.shoot("monitor-landscape-ja")
    # a finished call leaves the rows for the earlier calls
    await site.post("/api/counters/1/finish")
    await expect(tile).to_have_count(0)
    await expect(mon.by("recent")).to_contain_text(number_re(first))
    assert mon.loads == 1


async def test_monitor_absent_second_wait_and_counter_filter(site: Site) -> None:
    en = texts("monitor", "en")
    mon = await site.open("/ui/monitor.html?lang=en&layout=portrait", (1080, 1920),
                          wait_for="waiting-A")
    only3 = await site.open("/ui/monitor.html?counters=3", wait_for="waiting-A")
    await expect(mon.page.get_by_text(en["monitor.col.second_wait"]).first).to_be_visible()
    await expect(mon.page.locator("html")).to_have_attribute("lang", "en")

    a1 = await site.issue("A")
    a2 = await site.issue("A")
    await site.post("/api/counters/1/open")
    await site.post("/api/counters/1/call-next")
    await site.post("/api/counters/1/absent")
    await expect(mon.by("absent-list")).to_contain_text(number_re(a1))
    await expect(mon.page.get_by_text(en["monitor.absent_say"])).to_be_visible()
    await expect(mon.by("call-1")).to_have_count(0)
    # counter 1 is not among this monitor's counters: neither the call nor its absent number
    await expect(only3.by("absent-list")).not_to_contain_text(number_re(a1))

    await site.post("/api/counters/1/call-next")
    await expect(mon.by("call-1")).to_contain_text(number_re(a2))
    await expect(only3.by("recent")).not_to_contain_text(number_re(a2))
    await expect(only3.by("call-1")).to_have_count(0)
    await expect(mon.by("second-wait-T")).to_have_text("0")
    await site.post("/api/counters/1/transfer", {"service": "T"})
    await expect(mon.by("second-wait-T")).to_have_text("1")
    # counted once: the second-stage visitor is not also among the first-time waiters
    await expect(mon.by("waiting-T")).to_have_text("0")
    await site.issue("A")
    await expect(mon.by("waiting-A")).to_have_text("1")
    await assert_each_waiting_visitor_counted_once(site, mon)
    await expect(only3.by("second-wait-T")).to_have_count(0)  # counter 3 does not serve T

    b = await site.issue("B")
    await site.post("/api/counters/3/open")
    await site.post("/api/counters/3/call-next")
    await expect(only3.by("call-3")).to_contain_text(number_re(b))
    await mon.shoot("monitor-portrait-en")
    await only3.shoot("monitor-counter3-ja")
    assert (mon.loads, only3.loads) == (1, 1)


async def assert_each_waiting_visitor_counted_once(site: Site, mon: Tab) -> None:
    """The band's numbers add up to the tickets waiting (the state's queues), each once."""
    async with site.http.get("/api/state") as r:
        state = await r.json()
    queued = sum(len(s["queue"]) for s in state["services"])
    shown = 0
    for s in state["services"]:
        shown += int(await mon.by(f"waiting-{s['code']}").inner_text())
        shown += int(await mon.by(f"second-wait-{s['code']}").inner_text())
    assert queued >= 2
    assert shown == queued, (shown, queued)


async def test_monitor_subtitles_rotate_and_ticker_respects_reduced_motion(site: Site) -> None:
    mon = await site.open("/ui/monitor.html?langs=ja,en,zh&rotate=2", wait_for="waiting-A")
    heading = mon.page.locator("#calling-h .sub")
    await expect(heading).to_have_text(texts("monitor", "en")["monitor.calling"])
    await expect(heading).to_have_text(texts("monitor", "zh")["monitor.calling"], timeout=5000)
    await expect(heading).to_have_attribute("lang", "zh")
    track = mon.page.locator("#ticker-track")
    await expect(mon.by("ticker")).to_contain_text("マイナンバーカードの交付は予約制です。")
    moving = await track.evaluate("e => getComputedStyle(e).animationName")
    assert moving == "ticker"

    still = await site.open("/ui/monitor.html?lang=en", reduced_motion=True, wait_for="waiting-A")
    await expect(still.by("ticker")).to_contain_text("My Number card pick-up is by reservation.")
    name = await still.page.locator("#ticker-track").evaluate(
        "e => getComputedStyle(e).animationName")
    assert name == "none"


# --- counter display -------------------------------------------------------------------------

async def test_counter_display_shows_number_marks_calls_and_closed(site: Site) -> None:
    ja = texts("counter", "ja")
    en = texts("counter", "en")
    disp = await site.open("/ui/counter.html?counter=1", (800, 480), wait_for="current-number")
    disp_en = await site.open("/ui/counter.html?counter=1&lang=en", (1280, 720),
                              reduced_motion=True, wait_for="current-number")
    body = disp.page.locator("body")
    await expect(disp.by("current-number")).to_have_text(ja["counter.closed"])
    await expect(disp_en.by("current-number")).to_have_text(en["counter.closed"])
    await expect(disp.by("counter-name")).to_contain_text("1番窓口")

    number = await site.issue("A")
    await site.post("/api/counters/1/open")
    await expect(disp.by("current-number")).to_have_text("—")
    await site.post("/api/counters/1/call-next")
    await expect(disp.by("current-number")).to_have_text(str(number))
    await expect(body).to_have_attribute("data-mark", "call")
    await expect(disp.by("counter-label")).to_contain_text(ja["counter.calling"])
    await disp.shoot("counter-called-ja")

    await site.post("/api/counters/1/recall")
    await expect(body).to_have_attribute("data-mark", "recall")
    await expect(disp.by("counter-label")).to_contain_text(ja["counter.recall"])
    await expect(disp_en.by("counter-label")).to_contain_text(en["counter.recall"])
    blink = await disp.page.locator("#main").evaluate("e => getComputedStyle(e).animationName")
    still = await disp_en.page.locator("#main").evaluate(
        "e => getComputedStyle(e).animationName")
    assert (blink, still) == ("blink", "none")
    await disp_en.shoot("counter-recall-en")

    await site.post("/api/counters/1/finish")
    await expect(disp.by("current-number")).to_have_text("—")
    assert (disp.loads, disp_en.loads) == (1, 1)


# --- backyard --------------------------------------------------------------------------------

async def test_backyard_counts_waits_marks_thresholds_and_device_reasons(site: Site) -> None:
    ja = texts("backyard", "ja")
    en = texts("backyard", "en")
    by = await site.open("/ui/backyard.html", wait_for="service-A")
    by_en = await site.open("/ui/backyard.html?lang=en", wait_for="service-A")
    await expect(by.by("wait-A")).to_have_text("—")

    await site.issue("A")
    site.clock.advance(11 * 60)
    await site.issue("B")  # any commit pushes the state with the new wait_s
    row = by.by("service-A")
    await expect(row).to_have_attribute("data-level", "warn")
    await expect(row).to_contain_text(ja["backyard.level.warn"])
    await expect(by.by("wait-A")).to_contain_text("11分")
    await expect(by.by("waiting-A")).to_have_text("1")
    await expect(by.by("issued-A")).to_have_text("1")
    # counted on in the page between pushes
    before = await by.by("wait-A").inner_text()
    await expect(by.by("wait-A")).not_to_have_text(before, timeout=3000)

    site.clock.advance(10 * 60)
    await site.issue("B")
    await expect(row).to_have_attribute("data-level", "alert")
    await expect(row).to_contain_text(ja["backyard.level.alert"])
    await expect(by_en.by("service-A")).to_contain_text(en["backyard.level.alert"])

    await expect(by.by("counter-1")).to_contain_text(ja["backyard.counter.closed"])
    await site.post("/api/counters/1/open")
    await site.post("/api/counters/1/call-next")
    await expect(by.by("counter-1")).to_contain_text(ja["backyard.counter.open"])
    await expect(by.by("counter-number-1")).to_have_text(re.compile(r"^\d+$"))

    # how long counter 1 has served its visitor, from the call; flagged past ?serve= minutes
    serving = by.by("serving-1")
    await expect(serving).to_have_attribute("data-long", "false")
    await expect(serving).to_contain_text(ja["backyard.counter.serving"].split(" ")[0])
    strict = await site.open("/ui/backyard.html?serve=5", wait_for="service-A")
    site.clock.advance(6 * 60)
    await site.issue("B")  # a push with the new time
    await expect(strict.by("serving-1")).to_have_attribute("data-long", "true")
    await expect(strict.by("serving-1")).to_contain_text("長時間")
    await expect(strict.by("serving-1")).to_contain_text("6分")
    await expect(serving).to_have_attribute("data-long", "false")  # default 15 minutes
    site.clock.advance(10 * 60)
    await site.issue("B")
    await expect(serving).to_have_attribute("data-long", "true")
    await expect(by_en.by("serving-1")).to_contain_text("long")
    await expect(by.by("serving-3")).to_have_count(0)  # counter 3 is closed

    printer = by.by("device-printer-k1")
    await expect(printer).to_have_attribute("data-state", "ok")
    sim_device(PRINTER_SIM).faults.paper_out = True
    await site.issue("A")
    await expect(printer).to_have_attribute("data-state", "error")
    await expect(printer).to_contain_text(ja["backyard.reason.paper_out"])
    await expect(printer).to_contain_text(ja["backyard.state.error"])
    await expect(by_en.by("device-printer-k1")).to_contain_text("Out of paper")
    await by.shoot("backyard-ja")
    await by_en.shoot("backyard-en")
    assert by.loads == 1


# --- discovery and landing page --------------------------------------------------------------

async def test_discovery_lists_found_edges_with_links(site: Site) -> None:
    page = await site.open("/ui/discover.html", (1280, 800), wait_for="this-edge")
    await expect(page.by("no-edges")).to_be_visible()
    site.discovery.found = {
        "mp-site._madoguchi._tcp.local.": {
            "site": "mp-site", "api": "/api", "addresses": ["127.0.0.1"],
            "port": 8080, "url": "http://127.0.0.1:8080/", "self": True},
        "mp-annex._madoguchi._tcp.local.": {
            "site": "mp-annex", "api": "/api", "addresses": ["192.0.2.7"],
            "port": 8080, "url": "http://192.0.2.7:8080/", "self": False},
    }
    await page.page.get_by_role("button").click()
    await expect(page.by("edge")).to_have_count(2)
    # sorted by site id: the annex first, then this edge with its badge
    await expect(page.by("edge").nth(1)).to_contain_text(texts("discover", "ja")["discover.self"])
    await expect(page.by("edge").first).not_to_contain_text(
        texts("discover", "ja")["discover.self"])
    link = page.by("edge").first.get_by_role("link", name="案内表示（横）")
    assert await link.get_attribute("href") == \
        "http://192.0.2.7:8080/ui/monitor.html?layout=landscape&lang=ja"
    await page.shoot("discover-ja")
    en = await site.open("/ui/discover.html?lang=en", (1280, 800), wait_for="edge")
    await expect(en.page.locator("h1")).to_have_text(texts("discover", "en")["discover.title"])
    await en.shoot("discover-en")


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_landing_page_links_every_screen(site: Site, lang: str) -> None:
    page = await site.open(f"/?lang={lang}", (1280, 800), wait_for="screen-monitor")
    for screen in ("kiosk", "operator", "counter", "monitor", "backyard", "discover"):
        await expect(page.by(f"screen-{screen}")).to_be_visible()
    await expect(page.by("screen-monitor")).to_contain_text("layout=landscape|portrait")
    await expect(page.by("counter-links").get_by_role("link")).to_have_count(6)
    href = await page.by("counter-link-2").get_by_role("link").nth(1).get_attribute("href")
    assert (href or "").startswith("/ui/counter.html?counter=2")
    await expect(page.by("kiosk-link-k1")).to_be_visible()
    await expect(page.page.locator("h1")).to_contain_text(texts("index", lang)["index.title"])
    await page.shoot(f"index-{lang}")


async def test_screens_say_offline_when_the_edge_goes_away(site: Site) -> None:
    shared = json.loads((I18N / "ja.json").read_text("utf-8"))
    mon = await site.open("/ui/monitor.html", wait_for="waiting-A")
    disp = await site.open("/ui/counter.html?counter=1", (800, 480), wait_for="current-number")
    by = await site.open("/ui/backyard.html", wait_for="service-A")
    for tab in (mon, disp, by):
        await expect(tab.by("offline")).to_be_hidden()
    await site.stop()
    for tab in (mon, disp, by):
        await expect(tab.by("offline")).to_be_visible()
        await expect(tab.by("offline")).to_contain_text(shared["common.offline"])
        assert tab.loads == 1  # no reload: the page keeps its last state and retries
    await expect(disp.by("current-number")).to_have_text(texts("counter", "ja")["counter.closed"])


async def test_monitor_says_the_office_is_closed_for_the_year_end(site: Site) -> None:
    """The ward's calendar (issue 13): on 12/31 the guide monitor says why nobody is called,
    in the main language with the subtitle, from the edge's own state (no hub); the backyard
    monitor and the counter display say closed today as well."""
    mon = await site.open("/ui/monitor.html", wait_for="waiting-A")
    by = await site.open("/ui/backyard.html", wait_for="service-A")
    disp = await site.open("/ui/counter.html?counter=1", (800, 480), wait_for="current-number")
    closed = mon.by("closed-today")
    await expect(closed).to_be_hidden()
    await expect(by.by("closed-today")).to_be_hidden()
    site.clock.set(datetime(2026, 12, 31, 10, 0, tzinfo=TZ))
    site.edge.app[LIVE].poke()
    await expect(closed).to_be_visible()
    await expect(closed).to_contain_text("年末年始")
    await expect(closed).to_have_attribute("data-reason", "year_end")
    # the staff room's backyard monitor and the counter's display say it too
    await expect(by.by("closed-today")).to_contain_text("年末年始")
    await expect(disp.by("counter-label")).to_contain_text(
        texts("counter", "ja")["counter.label_day_closed"])
    shots = Path("test-artifacts/monitor-pages")
    await asyncio.to_thread(shots.mkdir, parents=True, exist_ok=True)
    await mon.page.screenshot(path=str(shots / "closed-year-end.png"))
