"""The operator panel (kiosk-ui/operator.html) in real headless Chromium against a real edge:
PIN login, open/close, every counter command by button and by shortcut, the counter's queue in
call order, held and absent lists, transfer, a keyboard-wedge scan, refusals in the chosen
language, device health, the offline banner, and the 1024x768 layout."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from conftest import free_port
from playwright.async_api import Browser, Page, async_playwright, expect
from support import morning

from edge.app import Edge, build_edge, start_edge
from edge.config import load_site_config
from edge.devices.transport.sim import SIMS
from edge.domain.clock import ManualClock
from edge.web.api import SESSIONS
from edge.web.auth import hash_pin
from edge.web.live import LIVE

SITE = """
[site]
access = "open"  # these tests are about the queue; sign-in: tests/edge/test_edge_access.py
id = "op-site"
name = { ja = "練馬区民事務所", en = "Nerima Office" }
status_url = "https://queue.example.jp/t/{token}"

[[services]]
code = "A"
name = { ja = "住民異動", en = "Moving" }
range = [1, 99]

[[services]]
code = "B"
name = { ja = "証明書", en = "Certificates" }
range = [101, 199]

[[services]]
code = "C"
name = { ja = "異動処理", en = "Moving, second stage" }
range = [401, 499]
kiosk = false

[[counters]]
id = "1"
name = { ja = "1番窓口", en = "Counter 1" }
services = ["A", "B"]
pin = "PIN_HASH"

[[counters]]
id = "2"
name = { ja = "2番窓口", en = "Counter 2" }
services = ["B", "A"]

[[counters]]
id = "3"
name = { ja = "3番窓口", en = "Counter 3" }
services = ["C"]

[[devices]]
id = "scanner-1"
kind = "scanner"
profile = "generic-serial-scanner"
url = "sim://op-scanner-1"
counter = "1"
"""

PIN = "1234"
_PIN_HASH = hash_pin(PIN)


@dataclass
class Site:
    edge: Edge
    url: str
    http: aiohttp.ClientSession

    async def post(self, path: str, body: Any = None, status: int | None = None) -> Any:
        async with self.http.post(path, json=body) as r:
            data = await r.json()
            if status is not None:
                assert r.status == status, data
            return data

    async def state(self) -> Any:
        async with self.http.get("/api/state") as r:
            return await r.json()

    async def issue(self, service: str, **extra: Any) -> dict[str, Any]:
        data = await self.post("/api/tickets", {"service": service, **extra}, 201)
        ticket: dict[str, Any] = data["ticket"]
        return ticket

    async def as_counter(self, cid: str, command: str, body: Any = None) -> Any:
        """A command from another panel (counter 2 and 3 have no PIN)."""
        return await self.post(f"/api/counters/{cid}/{command}", body, 200)


@pytest.fixture
async def site(tmp_path: Path) -> AsyncIterator[Site]:
    SIMS.clear()
    path = tmp_path / "site.toml"
    path.write_text(SITE.replace("PIN_HASH", _PIN_HASH), encoding="utf-8")
    edge = build_edge(load_site_config(path), tmp_path / "e.db", ManualClock(morning()))
    port = free_port()
    runner = await start_edge(edge, "127.0.0.1", port)
    url = f"http://127.0.0.1:{port}"
    async with aiohttp.ClientSession(base_url=url) as http:
        yield Site(edge, url, http)
    await runner.cleanup()


@pytest.fixture
async def browser(chromium_path: Path) -> AsyncIterator[Browser]:
    async with async_playwright() as p:
        b = await p.chromium.launch(executable_path=str(chromium_path))
        yield b
        await b.close()


async def open_page(browser: Browser, site: Site, query: str,
                    size: tuple[int, int] = (1366, 768)) -> Page:
    page = await browser.new_page(viewport={"width": size[0], "height": size[1]})
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    await page.goto(f"{site.url}/ui/operator.html?{query}")
    page.errors = errors  # type: ignore[attr-defined]
    return page


async def logged_in(browser: Browser, site: Site, lang: str = "ja",
                    size: tuple[int, int] = (1366, 768)) -> Page:
    page = await open_page(browser, site, f"counter=1&lang={lang}", size)
    await page.get_by_test_id("pin").fill(PIN)
    await page.get_by_test_id("login").click()
    await expect(page.get_by_test_id("open")).to_be_visible()
    return page


async def opened(browser: Browser, site: Site, lang: str = "ja") -> Page:
    page = await logged_in(browser, site, lang)
    await page.get_by_test_id("open").click()
    await expect(page.get_by_test_id("close")).to_be_visible()
    return page


def tid(page: Page, testid: str) -> Any:
    return page.get_by_test_id(testid)


def entry(page: Page, testid: str, number: int) -> Any:
    """The entry of one number in the queue, held or absent list."""
    return page.locator(f'[data-testid="{testid}"][data-number="{number}"]')


async def test_pin_login_wrong_then_right_then_logout(site: Site, browser: Browser) -> None:
    page = await open_page(browser, site, "counter=1")
    await expect(tid(page, "pin")).to_have_attribute("type", "password")
    await expect(tid(page, "pin")).to_have_attribute("inputmode", "numeric")
    await expect(tid(page, "current-number")).to_be_hidden()
    await tid(page, "pin").fill("9999")
    await tid(page, "login").click()
    await expect(tid(page, "message")).to_contain_text("暗証番号が違います")
    await expect(tid(page, "pin")).to_be_visible()
    await tid(page, "pin").fill(PIN)
    await tid(page, "pin").press("Enter")
    await expect(tid(page, "message")).to_contain_text("ログインしました")
    await expect(tid(page, "counter-name")).to_have_text("1番窓口")
    token = await page.evaluate("sessionStorage.getItem('madoguchi.operator.op-site.1')")
    assert token
    assert site.edge.app[SESSIONS].counter_of(token) == "1"
    # the session survives a reload of the tab
    await page.reload()
    await expect(tid(page, "open")).to_be_visible()
    await tid(page, "logout").click()
    await expect(tid(page, "pin")).to_be_visible()
    assert site.edge.app[SESSIONS].counter_of(token) is None
    assert page.errors == []  # type: ignore[attr-defined]


async def test_too_many_wrong_pins_are_refused_with_the_edge_message(
        site: Site, browser: Browser) -> None:
    page = await open_page(browser, site, "counter=1&lang=en")
    for _ in range(5):
        await tid(page, "pin").fill("0000")
        await tid(page, "login").click()
        await expect(tid(page, "message")).to_contain_text("Wrong PIN")
        await page.evaluate("document.getElementById('message').textContent = ''")
    await tid(page, "pin").fill(PIN)
    await tid(page, "login").click()
    await expect(tid(page, "message")).to_contain_text("Too many failed sign-ins")
    await expect(tid(page, "pin")).to_be_visible()


async def test_counter_without_pin_needs_no_login(site: Site, browser: Browser) -> None:
    await site.issue("B")
    page = await open_page(browser, site, "counter=2&lang=en")
    await expect(tid(page, "open")).to_be_visible()
    await expect(tid(page, "logout")).to_be_hidden()
    await tid(page, "open").click()
    await tid(page, "call-next").click()
    await expect(tid(page, "current-number")).to_have_text("101")


async def test_buttons_say_why_they_are_off_and_follow_the_counter(
        site: Site, browser: Browser) -> None:
    page = await logged_in(browser, site)
    await expect(tid(page, "counter-state")).to_contain_text("休止中")
    for b in ("call-next", "recall", "hold", "absent", "finish", "transfer", "call-number"):
        await expect(tid(page, b)).to_be_disabled()
    await expect(tid(page, "disabled-reason")).to_contain_text("窓口が休止中です")
    await tid(page, "open").click()
    await expect(tid(page, "counter-state")).to_contain_text("受付中")
    await expect(tid(page, "call-next")).to_be_disabled()  # nobody waiting
    await expect(tid(page, "disabled-reason")).to_contain_text("待っている人はいません")
    await site.issue("A")  # a kiosk elsewhere: the panel learns it live
    await expect(tid(page, "call-next")).to_be_enabled()
    await expect(tid(page, "recall")).to_be_disabled()
    await expect(tid(page, "disabled-reason")).to_contain_text("対応中の番号がない")
    await site.issue("A")
    await expect(tid(page, "queue-entry")).to_have_count(2)
    await tid(page, "call-next").dblclick()  # a double click calls one visitor, not two
    await expect(tid(page, "current-number")).to_have_text("1")
    await expect(tid(page, "queue-entry")).to_have_count(1)
    await expect(tid(page, "current-service")).to_contain_text("住民異動")
    await expect(tid(page, "current-calls")).to_have_text("呼出 1回")
    await expect(tid(page, "current-since")).to_contain_text("呼出から")
    await expect(tid(page, "close")).to_be_disabled()  # serving someone
    await tid(page, "recall").click()
    await expect(tid(page, "current-calls")).to_have_text("呼出 2回")
    await expect(tid(page, "message")).to_contain_text("1番をもう一度呼び出しました")
    await tid(page, "finish").click()
    await expect(tid(page, "current-number")).to_have_text("—")
    await expect(tid(page, "message")).to_contain_text("1番の対応を完了しました")
    await tid(page, "close").click()
    await expect(tid(page, "counter-state")).to_contain_text("休止中")
    assert not (await site.state())["counters"][0]["open"]


async def test_shortcuts_and_not_while_typing_in_the_number_field(
        site: Site, browser: Browser) -> None:
    for _ in range(4):
        await site.issue("A")
    page = await opened(browser, site, "en")
    await expect(tid(page, "call-next")).to_contain_text("N")
    await page.keyboard.press("n")
    await expect(tid(page, "current-number")).to_have_text("1")
    await page.keyboard.press("r")
    await expect(tid(page, "current-calls")).to_have_text("Called 2×")
    await page.keyboard.press("h")
    await expect(tid(page, "held-list")).to_contain_text("1")
    await page.keyboard.press("Space")
    await expect(tid(page, "current-number")).to_have_text("2")
    await page.keyboard.press("a")
    await expect(tid(page, "absent-list")).to_contain_text("2")
    await page.keyboard.press("n")
    await expect(tid(page, "current-number")).to_have_text("3")
    # letters typed into the number field are text there, never commands
    await tid(page, "number").click()
    await page.keyboard.type("hafrn ")
    await page.wait_for_timeout(200)
    await expect(tid(page, "current-number")).to_have_text("3")
    await expect(tid(page, "current-calls")).to_have_text("Called 1×")
    await tid(page, "number").press("Escape")
    await page.keyboard.press("f")
    await expect(tid(page, "current-number")).to_have_text("—")
    await expect(tid(page, "message")).to_contain_text("Finished number 3")


async def test_call_a_number_with_enter_and_cancel_a_number(site: Site, browser: Browser) -> None:
    for _ in range(3):
        await site.issue("A")
    await site.issue("B")
    page = await opened(browser, site)
    await tid(page, "number").fill("101")
    await tid(page, "number").press("Enter")
    await expect(tid(page, "current-number")).to_have_text("101")
    await expect(tid(page, "number")).to_have_value("")
    # a digit typed anywhere goes to the number field
    await page.keyboard.press("2")
    await expect(tid(page, "number")).to_be_focused()
    await expect(tid(page, "number")).to_have_value("2")
    await tid(page, "cancel").click()
    await expect(tid(page, "message")).to_contain_text("2番を取り消しました")
    await expect(entry(page, "queue-entry", 2)).to_have_count(0)
    # a refusal says the edge's reason in Japanese
    await tid(page, "number").fill("2")
    await tid(page, "cancel").click()
    await expect(tid(page, "message")).to_contain_text("2番は取り消されています")
    await expect(tid(page, "message")).to_contain_text("できませんでした")


async def test_queue_in_call_order_named_transfers_and_priority_first(
        site: Site, browser: Browser) -> None:
    await site.issue("B")  # 101
    await site.issue("A")  # 1
    await site.issue("A", priority=True)  # 2: priority within A
    await site.issue("A")  # 3
    await site.issue("B")  # 102: called at counter 2 and sent to counter 1 by name
    await site.as_counter("2", "open")
    await site.as_counter("2", "call", {"number": 102})
    await site.as_counter("2", "transfer", {"counter": "1"})
    page = await opened(browser, site)
    entries = tid(page, "queue-entry")
    await expect(entries).to_have_count(5)
    numbers = [await e.get_attribute("data-number") for e in await entries.all()]
    assert numbers == ["102", "2", "1", "3", "101"]
    await expect(entries.first).to_contain_text("指名")
    await expect(entries.nth(1)).to_contain_text("優先")
    await expect(tid(page, "queue-list")).to_contain_text("2次")
    # call next takes what the list shows first
    await tid(page, "call-next").click()
    await expect(tid(page, "current-number")).to_have_text("102")
    await expect(tid(page, "current-stage")).to_have_text("2次")
    # a click on an entry calls that number
    await entry(page, "queue-entry", 101).click()
    await expect(tid(page, "current-number")).to_have_text("101")


async def test_held_and_absent_lists_act_on_click(site: Site, browser: Browser) -> None:
    for _ in range(3):
        await site.issue("A")
    await site.as_counter("2", "open")
    await site.as_counter("2", "call", {"number": 3})
    await site.as_counter("2", "absent")
    page = await opened(browser, site)
    await expect(tid(page, "absent-list")).to_contain_text("2番窓口で不在")
    await tid(page, "call-next").click()
    await tid(page, "hold").click()
    await expect(tid(page, "held-entry")).to_have_count(1)
    await tid(page, "call-next").click()
    await expect(tid(page, "current-number")).to_have_text("2")
    await tid(page, "held-entry").click()
    await expect(tid(page, "current-number")).to_have_text("1")
    await expect(tid(page, "held-list")).to_contain_text("ありません")
    await tid(page, "absent").click()
    await expect(tid(page, "absent-entry")).to_have_count(2)
    await entry(page, "absent-entry", 3).click()
    await expect(tid(page, "current-number")).to_have_text("3")
    await expect(tid(page, "message")).to_contain_text("3番の不在を解除して呼び出しました")
    # clear-absence and call-held from the number field
    await tid(page, "number").fill("1")
    await tid(page, "clear-absence").click()
    await expect(tid(page, "current-number")).to_have_text("1")
    await tid(page, "hold").click()
    await tid(page, "number").fill("1")
    await tid(page, "call-held").click()
    await expect(tid(page, "current-number")).to_have_text("1")


async def test_transfer_to_a_second_stage_service_and_to_a_counter(
        site: Site, browser: Browser) -> None:
    await site.issue("A")
    await site.issue("A")
    page = await opened(browser, site, "en")
    await tid(page, "call-next").click()
    await tid(page, "transfer").click()
    await expect(tid(page, "transfer-confirm")).to_be_disabled()
    services = await tid(page, "transfer-service").locator("option").all_inner_texts()
    assert any("C Moving, second stage" in s for s in services)
    await tid(page, "transfer-service").select_option("C")
    await tid(page, "transfer-confirm").click()
    await expect(tid(page, "message")).to_contain_text("Transferred number 1 to C Moving")
    await expect(tid(page, "transfer-service")).to_be_hidden()
    row = next(s for s in (await site.state())["services"] if s["code"] == "C")
    assert (row["waiting"], row["second_wait"]) == (1, 1)
    # to a counter by name: it waits for that counter only
    await tid(page, "call-next").click()
    await page.keyboard.press("t")
    await tid(page, "transfer-counter").select_option("2")
    await tid(page, "transfer-confirm").click()
    await expect(tid(page, "message")).to_contain_text("Transferred number 2 to Counter 2")
    queue = next(s for s in (await site.state())["services"] if s["code"] == "A")["queue"]
    assert [(q["number"], q["target_counter"], q["stage"]) for q in queue] == [(2, "2", 2)]
    await expect(entry(page, "queue-entry", 2)).to_have_count(0)  # not ours to call


async def test_scanner_wedge_clears_an_absence_and_calls_a_waiting_number(
        site: Site, browser: Browser) -> None:
    first = await site.issue("A")
    await site.issue("A")
    await site.issue("A")
    page = await opened(browser, site)
    await tid(page, "call-next").click()
    await tid(page, "absent").click()
    await expect(tid(page, "absent-entry")).to_have_count(1)
    await tid(page, "call-next").click()
    await expect(tid(page, "current-number")).to_have_text("2")
    # the QR of ticket 1 scanned while a button has the focus: keys a few ms apart + Enter.
    # (Dispatched in the page: Playwright's typing over CDP on a loaded machine can be slower
    # than a scanner, and a slow first key is rightly taken as a person's shortcut.)
    await tid(page, "recall").focus()
    await page.evaluate("""(text) => { for (const key of [...text, "Enter"]) {
        document.activeElement.dispatchEvent(new KeyboardEvent("keydown",
            { key, bubbles: true, cancelable: true })); } }""",
        f"https://queue.example.jp/t/{first['token']}")
    await expect(tid(page, "current-number")).to_have_text("1")
    await expect(tid(page, "message")).to_contain_text("1番の不在を解除して呼び出しました")
    await expect(tid(page, "absent-list")).to_contain_text("ありません")
    held = (await site.state())["held"]
    assert held == []  # the "h" of https did not hold anyone
    # a bare number scanned: not absent, so it is called
    await page.locator("body").focus()
    await page.keyboard.type("3\n")
    await expect(tid(page, "current-number")).to_have_text("3")
    await expect(tid(page, "number")).not_to_be_focused()  # shortcuts work again
    # something that is not a ticket
    await page.keyboard.type("@@@@####\n")
    await expect(tid(page, "message")).to_contain_text("番号札のものではありません")
    await expect(tid(page, "current-number")).to_have_text("3")


async def test_expired_session_brings_back_the_pin_form(site: Site, browser: Browser) -> None:
    await site.issue("A")
    page = await opened(browser, site, "en")
    site.edge.app[SESSIONS].sessions.clear()  # e.g. the edge restarted
    await tid(page, "call-next").click()
    await expect(tid(page, "pin")).to_be_visible()
    await expect(tid(page, "message")).to_contain_text("sign in again")
    await tid(page, "pin").fill(PIN)
    await tid(page, "login").click()
    await tid(page, "call-next").click()
    await expect(tid(page, "current-number")).to_have_text("1")


async def test_language_switch_and_refusals_in_english(site: Site, browser: Browser) -> None:
    page = await opened(browser, site, "en")
    await expect(tid(page, "call-next")).to_contain_text("Call next")
    await tid(page, "number").fill("55")
    await tid(page, "number").press("Enter")
    await expect(tid(page, "message")).to_contain_text("Number 55 has not been issued today")
    await tid(page, "lang-ja").click()
    await expect(tid(page, "call-next")).to_contain_text("次を呼出")
    await expect(page.locator("html")).to_have_attribute("lang", "ja")
    assert "lang=ja" in page.url
    await tid(page, "lang-ko").click()
    await expect(tid(page, "call-next")).to_contain_text("다음 호출")
    await tid(page, "number").fill("56")
    await tid(page, "number").press("Enter")  # server sentence: English for ko
    await expect(tid(page, "message")).to_contain_text("Number 56 has not been issued today")
    await expect(tid(page, "message")).to_contain_text("처리하지 못했습니다")


async def test_device_health_and_offline_banner(site: Site, browser: Browser) -> None:
    page = await opened(browser, site)
    device = tid(page, "device")
    await expect(device).to_have_count(1)
    await expect(device).to_contain_text("バーコードリーダー")
    await expect(device).to_have_attribute("data-state", "ok")
    await expect(device).to_contain_text("正常")
    await expect(tid(page, "offline")).to_be_hidden()
    await page.evaluate("""() => { const b = document.getElementById('offline');
        new MutationObserver(() => { if (!b.hidden) window.sawOffline = b.textContent; })
          .observe(b, { attributes: true }); }""")
    await site.edge.app[LIVE].close_all()  # the websocket drops; live.js reconnects
    await page.wait_for_function("window.sawOffline !== undefined")
    assert "接続が切れています" in await page.evaluate("window.sawOffline")
    await expect(tid(page, "offline")).to_be_hidden(timeout=5000)
    await site.issue("A")  # and the page is live again without a reload
    await expect(tid(page, "queue-entry")).to_have_count(1)


async def test_usable_at_1024x768(site: Site, browser: Browser) -> None:
    for _ in range(30):
        await site.issue("A")
    page = await logged_in(browser, site, "ja", (1024, 768))
    await tid(page, "open").click()
    await tid(page, "call-next").click()
    await expect(tid(page, "current-number")).to_have_text("1")
    for testid in ("call-next", "recall", "hold", "absent", "finish", "transfer", "number",
                   "call-number", "call-held", "clear-absence", "cancel", "queue-list",
                   "held-list", "absent-list", "close", "logout"):
        box = await tid(page, testid).bounding_box()
        assert box is not None, testid
        assert box["x"] >= 0, testid
        assert box["x"] + box["width"] <= 1024, testid
        assert box["y"] >= 0, testid
        assert box["y"] + box["height"] <= 768, testid
    # every control has an accessible name
    unnamed = await page.evaluate("""() => [...document.querySelectorAll('button, input, select')]
        .filter((e) => e.offsetParent !== null)
        .filter((e) => !(e.getAttribute('aria-label') || e.textContent.trim()
                         || (e.labels && e.labels.length)))
        .map((e) => e.outerHTML)""")
    assert unnamed == []
