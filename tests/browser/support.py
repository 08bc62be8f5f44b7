"""A live test site and headless Chromium for the screens' browser tests.

Load with ``pytest_plugins = ["browser.support"]`` in a test module. ``screens`` gives a
running edge (in this process, so simulated device faults can be switched from the test) on a
free port of 127.0.0.1 and a Chromium (``chromium_path`` fixture: skipped when missing, failed
under ``MADOGUCHI_STRICT=1``). Every page opened through it records uncaught script errors,
console errors, missing ``/ui/`` files, reloads and any request that leaves 127.0.0.1 (the
screens must work offline on the LAN); ``Screens.close`` asserts none happened.
"""

from __future__ import annotations

import asyncio
import contextlib
import re
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit

import aiohttp
import pytest
from conftest import free_port
from playwright.async_api import Browser, BrowserContext, Locator, Page, async_playwright

from edge.app import Edge, build_edge, start_edge
from edge.config import load_site_config
from edge.devices.transport.sim import SIMS
from edge.domain.clock import SystemClock
from edge.web.auth import hash_pin
from edge.web.discovery import enable_discovery

REPO_ROOT = Path(__file__).resolve().parents[2]
SCREENSHOTS = REPO_ROOT / "test-artifacts" / "screens"
PIN = "1234"
PRINTER_SIM = "screens-printer-k1"
SCAN_KEY_MS = 4.0  # a USB HID scanner sends a character every few ms

# Screen sizes: a landscape touch kiosk, an office PC, a 16:9 ceiling monitor (and portrait),
# a small screen above a counter, the staff room's monitor.
VIEWPORTS: dict[str, tuple[int, int]] = {
    "kiosk": (1920, 1080), "operator": (1366, 768), "monitor": (1920, 1080),
    "monitor-portrait": (1080, 1920), "counter": (1024, 600), "backyard": (1920, 1080),
    "discover": (1280, 800), "index": (1280, 800),
}

SITE = """
[site]
access = "open"  # these tests are about the queue; sign-in: tests/edge/test_edge_access.py
id = "screens-site"
status_url = "https://queue.example.jp/t/{token}"
lang_reset_seconds = 60

[site.name]
ja = "練馬区民事務所"
en = "Nerima Residents Office"
zh = "练马区民事务所"
ko = "네리마 구민사무소"

[site.guidance]
ja = "ご用件のボタンを押してください。"
en = "Touch the button for your errand."
zh = "请按下您要办理业务的按钮。"
ko = "용건의 버튼을 눌러 주세요."

[[services]]
code = "A"
name = { ja = "住民異動届", en = "Moving in / out", zh = "迁入・迁出申报", ko = "전입・전출 신고" }
range = [1, 99]
ticket = "two-part"
handling_minutes = 8

[[services]]
code = "B"
name = { ja = "証明書発行", en = "Certificates", zh = "证明书发行", ko = "증명서 발급" }
range = [101, 199]
web = { from = "00:00", to = "24:00" }  # web tickets all day (the tests run at any hour)
handling_minutes = 4

[[services]]
code = "T"
name = { ja = "住民異動 2次受付", en = "Moving: second reception", zh = "住民迁移 第二次受理" }
range = [801, 899]
kiosk = false
handling_minutes = 12

[[counters]]
id = "1"
name = { ja = "1番窓口", en = "Counter 1", zh = "1号窗口", ko = "1번 창구" }
services = ["A", "B"]
pin = "{pin_hash}"

[[counters]]
id = "2"
name = { ja = "2番窓口", en = "Counter 2", zh = "2号窗口", ko = "2번 창구" }
services = ["T"]

[[counters]]
id = "3"
name = { ja = "3番窓口", en = "Counter 3", zh = "3号窗口", ko = "3번 창구" }
services = ["B", "A"]

[[menus]]
id = "main"
name = { ja = "通常", en = "Regular" }
services = ["A", "B"]
default = true

[[menus]]
id = "short"
name = { ja = "証明書のみ", en = "Certificates only" }
services = ["B"]
guidance = { ja = "証明書発行のみ受け付けます。", en = "Certificates only at this time." }

[[notices]]
[notices.text]
ja = "マイナンバーカードの交付は予約制です。"
en = "My Number card pick-up is by reservation."
zh = "个人编号卡的领取需要预约。"
ko = "마이넘버 카드 교부는 예약제입니다."

[[notices]]
[notices.text]
ja = "証明書はコンビニでも取得できます。"
en = "Certificates are also available at convenience stores."
zh = "证明书也可在便利店领取。"
ko = "증명서는 편의점에서도 발급받을 수 있습니다."

[[devices]]
id = "printer-k1"
kind = "printer"
profile = "epson-tm-t88vi"
url = "sim://{printer_sim}"
kiosk = "k1"

[[devices]]
id = "led"
kind = "display"
profile = "led-ascii-stx"
url = "sim://screens-led"
addresses = { "1" = 1, "2" = 2, "3" = 3 }
"""


def site_toml() -> str:
    # the wall clock: open on holidays and at the year end too (tests/edge/test_calendar.py)
    return (SITE.replace("{pin_hash}", hash_pin(PIN))
            .replace("{printer_sim}", PRINTER_SIM)
            + "\n[calendar]\nnational_holidays = false\nyear_end = []\n")


@dataclass
class Screen:
    """One browser page (in its own context) and what went wrong in it."""

    page: Page
    context: BrowserContext
    name: str
    errors: list[str] = field(default_factory=list)
    outside: list[str] = field(default_factory=list)
    loads: int = 0

    def by(self, testid: str) -> Locator:
        return self.page.get_by_test_id(testid)

    async def scan(self, text: str, gap_ms: float = SCAN_KEY_MS) -> None:
        """A keyboard-wedge scanner: the text typed fast, then Enter.

        Real key events (CDP ``Input.dispatchKeyEvent``, trusted like a USB HID device's) sent
        back to back, each stamped ``gap_ms`` after the previous as a scanner's would be, so
        ``event.timeStamp`` shows a scanner's pace even when this machine is busy. (Playwright's
        ``keyboard.type`` awaits every key: under load its keys arrive 100+ ms apart.)"""
        cdp = await self.context.new_cdp_session(self.page)
        t0 = time.time()
        sends = []
        keys = [(ch, {"key": ch, "text": ch, "unmodifiedText": ch}) for ch in text]
        keys.append(("\r", {"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13,
                            "text": "\r", "unmodifiedText": "\r"}))
        for i, (_ch, down) in enumerate(keys):
            at = t0 + i * gap_ms / 1000
            up = {k: v for k, v in down.items() if k not in ("text", "unmodifiedText")}
            sends.append(cdp.send("Input.dispatchKeyEvent",
                                  {"type": "keyDown", "timestamp": at, **down}))
            sends.append(cdp.send("Input.dispatchKeyEvent",
                                  {"type": "keyUp", "timestamp": at + gap_ms / 2000, **up}))
        await asyncio.gather(*sends)
        await cdp.detach()

    async def shoot(self, name: str, full_page: bool = False) -> Path:
        """Save ``test-artifacts/screens/<name>.png``: the screen as shown, or the whole page."""
        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        path = SCREENSHOTS / f"{name}.png"
        await self.page.screenshot(path=str(path), full_page=full_page)
        return path


@dataclass
class Screens:
    """The running edge, an HTTP client for it, and the browser."""

    edge: Edge
    url: str
    http: aiohttp.ClientSession
    browser: Browser
    opened: list[Screen] = field(default_factory=list)

    async def open(self, path: str, *, lang: str | None = None, viewport: str | None = None,
                   wait_for: str | None = None, alternatives: tuple[str, ...] = (),
                   **params: str) -> Screen:
        """Open ``/ui/<path>`` in a fresh context; ``lang`` goes into ``?lang=`` and the locale.

        ``wait_for``: a data-testid that must be visible before returning (page rendered);
        ``alternatives``: other data-testids that will do as well."""
        query = dict(params)
        if lang is not None:
            query["lang"] = lang
        name = viewport or Path(urlsplit(path).path).stem
        width, height = VIEWPORTS.get(name, (1280, 800))
        context = await self.browser.new_context(
            viewport={"width": width, "height": height},
            locale={"ja": "ja-JP", "en": "en-US", "zh": "zh-CN", "ko": "ko-KR"}.get(
                lang or "ja", "ja-JP"))
        page = await context.new_page()
        screen = Screen(page, context, name)
        self._watch(screen)
        sep = "&" if "?" in path else "?"
        target = f"{self.url}/ui/{path}" + (sep + urlencode(query) if query else "")
        await page.goto(target)
        self.opened.append(screen)
        if wait_for is not None:
            ready = screen.by(wait_for)
            for other in alternatives:  # e.g. a list or its "none found" line
                ready = ready.or_(screen.by(other))
            await ready.first.wait_for(state="visible")
        return screen

    def _watch(self, screen: Screen) -> None:
        page = screen.page

        def on_console(msg: Any) -> None:
            if msg.type == "error" and "Failed to load resource" not in msg.text:
                screen.errors.append(f"console: {msg.text}")

        def on_response(resp: Any) -> None:
            path = urlsplit(resp.url).path
            if resp.status >= 400 and path.startswith("/ui/"):
                screen.errors.append(f"{resp.status} {path}")

        def on_request(req: Any) -> None:
            host = urlsplit(req.url).hostname
            if req.url.startswith(("http", "ws")) and host not in ("127.0.0.1", "localhost"):
                screen.outside.append(req.url)

        def on_nav(frame: Any) -> None:
            if frame == page.main_frame:
                screen.loads += 1

        page.on("pageerror", lambda exc: screen.errors.append(f"pageerror: {exc}"))
        page.on("console", on_console)
        page.on("response", on_response)
        page.on("request", on_request)
        page.on("framenavigated", on_nav)

    async def post(self, path: str, body: Any = None, status: int = 200,
                   token: str | None = None) -> dict[str, Any]:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        async with self.http.post(path, json=body, headers=headers) as r:
            data: dict[str, Any] = await r.json()
            assert r.status == status, (path, r.status, data)
            return data

    async def get(self, path: str) -> Any:
        async with self.http.get(path) as r:
            assert r.status == 200, (path, r.status)
            return await r.json()

    async def session(self, counter: str = "1") -> str:
        """An operator session for a PIN counter, over the API."""
        data = await self.post(f"/api/counters/{counter}/login", {"pin": PIN})
        token: str = data["session"]
        return token

    async def state(self) -> dict[str, Any]:
        data: dict[str, Any] = await self.get("/api/state")
        return data

    async def close(self) -> None:
        problems = []
        for s in self.opened:
            problems += [f"{s.name}: {e}" for e in s.errors]
            problems += [f"{s.name}: fetched from outside the LAN: {u}" for u in s.outside]
        for s in self.opened:
            await s.context.close()
        self.opened.clear()
        assert not problems, "page problems:\n" + "\n".join(problems)


async def login(screen: Screen, pin: str = PIN) -> None:
    """Type the PIN on the operator page and wait until the panel is there."""
    await screen.by("pin").fill(pin)
    await screen.by("login").click()
    await screen.by("call-next").wait_for(state="visible")


async def wait_until(cond: Any, timeout: float = 5.0, what: str = "condition") -> None:
    """Poll a sync or async predicate."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while True:
        value = cond()
        if asyncio.iscoroutine(value):
            value = await value
        if value:
            return
        if loop.time() > deadline:
            raise AssertionError(f"{what} not met within {timeout} s")
        await asyncio.sleep(0.03)


def digits(text: str) -> str:
    return re.sub(r"\D", "", text)


@pytest.fixture
async def browser(chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as pw:
        b = await pw.chromium.launch(executable_path=str(chromium_path))
        try:
            yield b
        finally:
            await b.close()


@contextlib.asynccontextmanager
async def running_site(tmp_path: Path, browser: Browser,
                       discovery: bool = False) -> AsyncIterator[Screens]:
    """The test site's edge on a free port (advertised with zeroconf if ``discovery``)."""
    SIMS.clear()
    path = tmp_path / "site.toml"
    path.write_text(site_toml(), encoding="utf-8")
    config = load_site_config(path)
    edge = build_edge(config, tmp_path / "edge.db", SystemClock(config.timezone))
    port = free_port()
    if discovery:
        enable_discovery(edge.app, config.site, config.name.get("ja"), "127.0.0.1", port)
    runner = await start_edge(edge, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    try:
        async with aiohttp.ClientSession(base_url=url) as http:
            s = Screens(edge, url, http, browser)
            try:
                yield s
            finally:
                await s.close()
    finally:
        await runner.cleanup()


@pytest.fixture
async def screens(tmp_path: Path, browser: Browser) -> AsyncIterator[Screens]:
    async with running_site(tmp_path, browser) as s:
        yield s


@pytest.fixture
async def screens_discovery(tmp_path: Path, browser: Browser) -> AsyncIterator[Screens]:
    """Like ``screens``, with the edge advertising itself (``_madoguchi._tcp``) on 127.0.0.1."""
    async with running_site(tmp_path, browser, discovery=True) as s:
        yield s


async def scan(page: Page, text: str, gap_ms: float = 4.0) -> None:
    """A keyboard-wedge scanner: trusted key events stamped a few ms apart, then Enter."""
    cdp = await page.context.new_cdp_session(page)
    t0 = time.time()
    keys: list[dict[str, Any]] = [{"key": ch, "text": ch} for ch in text]
    keys.append({"key": "Enter", "code": "Enter", "windowsVirtualKeyCode": 13, "text": "\r"})
    sends = []
    for i, down in enumerate(keys):
        at = t0 + i * gap_ms / 1000
        up = {k: v for k, v in down.items() if k != "text"}
        sends.append(cdp.send("Input.dispatchKeyEvent", {"type": "keyDown", "timestamp": at,
                                                         **down}))
        sends.append(cdp.send("Input.dispatchKeyEvent", {"type": "keyUp",
                                                         "timestamp": at + gap_ms / 2000, **up}))
    await asyncio.gather(*sends)
    await cdp.detach()
