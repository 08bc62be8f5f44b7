"""The screens end to end in real headless Chromium, everything live (no page is ever reloaded).

A visitor takes a number on the kiosk (in Japanese, then in English), the clerk logs in with the
PIN and calls it, the guide monitor and the counter display show it at once; marked absent it
appears in the monitor's absent list, a scan of the ticket's QR (a keyboard wedge typing fast
into the operator page) clears the absence and calls it again; transferred to the second-stage
service it raises the monitor's second-wait count. A printer out of paper still gives the
visitor a number on screen with the reason; device health shows on the backyard monitor.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

pytest.register_assert_rewrite("browser")

from browser.support import PRINTER_SIM, Screen, Screens, login, wait_until  # noqa: E402
from playwright.async_api import expect  # noqa: E402

from edge.devices.transport.sim import sim_device  # noqa: E402

pytest_plugins = ["browser.support"]

STATUS_URL = "https://queue.example.jp/t/{token}"
UI = Path(__file__).resolve().parent.parent / "kiosk-ui"


def texts(page: str, lang: str) -> dict[str, str]:
    """The page's own words (so the test checks words, not colours, without copying them)."""
    table: dict[str, str] = json.loads((UI / "i18n" / page / f"{lang}.json").read_text("utf-8"))
    return table


def number_re(n: int | str) -> re.Pattern[str]:
    """The number as a whole token (1 must not match 101 or a counter name's digits)."""
    return re.compile(rf"(?<![0-9]){n}(?![0-9])")


async def take_ticket(kiosk: Screen, service: str) -> dict[str, Any]:
    """Tap a service button; the issue answer (with the ticket's token) as the page got it."""
    async with kiosk.page.expect_response(
            lambda r: r.url.endswith("/api/tickets") and r.request.method == "POST") as info:
        await kiosk.by(f"service-{service}").click()
    response = await info.value
    assert response.status == 201
    data: dict[str, Any] = await response.json()
    return data


async def close_result(kiosk: Screen) -> None:
    await kiosk.by("dialog-close").click()
    await expect(kiosk.by("ticket-result")).to_be_hidden()


async def test_ticket_taken_called_absent_scanned_transferred_live(screens: Screens) -> None:
    kiosk = await screens.open("kiosk.html", lang=None, wait_for="service-A", kiosk="k1")
    monitor = await screens.open("monitor.html", wait_for="waiting-A")
    display = await screens.open("counter.html", wait_for="current-number", counter="1")
    operator = await screens.open("operator.html", wait_for="pin", counter="1")

    # --- kiosk in Japanese (the default) -------------------------------------------------------
    assert await kiosk.page.get_attribute("html", "lang") == "ja"
    await expect(kiosk.by("service-A")).to_contain_text("住民異動届")
    ja = await take_ticket(kiosk, "A")
    number = ja["ticket"]["number"]
    assert number == 1
    result = kiosk.by("ticket-result")
    await expect(result).to_be_visible()
    await expect(kiosk.by("ticket-number")).to_have_text(number_re(number))
    await expect(kiosk.by("print-status")).to_have_attribute("data-printed", "true")
    assert re.search(r"[\u3040-\u30ff\u4e00-\u9fff]", await result.inner_text())  # Japanese
    await close_result(kiosk)

    # --- kiosk in English ---------------------------------------------------------------------
    await kiosk.by("lang-en").click()
    await wait_until(lambda: _lang_is(kiosk, "en"), what="kiosk in English")
    await expect(kiosk.by("service-B")).to_contain_text("Certificates")
    en = await take_ticket(kiosk, "B")
    assert en["ticket"]["number"] == 101
    await expect(kiosk.by("ticket-number")).to_have_text(number_re(101))
    text = await kiosk.by("ticket-result").inner_text()
    assert not re.search(r"[\u3040-\u30ff]", text), f"kana on the English result: {text!r}"
    await close_result(kiosk)
    assert [e["data"]["lang"] for e in await issued_events(screens)] == ["ja", "en"]

    # the monitor counted both without a reload
    await expect(monitor.by("waiting-A")).to_have_text(number_re(1))
    await expect(monitor.by("waiting-B")).to_have_text(number_re(1))

    # --- operator: PIN, open, call ------------------------------------------------------------
    await login(operator)
    if await operator.by("open").is_visible():
        await operator.by("open").click()
    await operator.by("call-next").click()
    await expect(operator.by("current-number")).to_have_text(number_re(number))
    await expect(monitor.by("call-1")).to_contain_text(number_re(number))
    await expect(monitor.by("calling")).to_contain_text(number_re(number))
    await expect(display.by("current-number")).to_have_text(number_re(number))
    await expect(monitor.by("waiting-A")).to_have_text(number_re(0))

    # --- absent -> on the monitor's absent list -------------------------------------------
    await operator.by("absent").click()
    await expect(monitor.by("absent-list")).to_contain_text(number_re(number))
    await expect(operator.by("absent-list")).to_contain_text(number_re(number))
    await expect(monitor.by("calling")).not_to_contain_text(number_re(number))
    await expect(display.by("current-number")).not_to_have_text(number_re(number))

    # --- a scan of the ticket's QR clears the absence and calls it again -------------------
    await operator.scan(STATUS_URL.format(token=ja["ticket"]["token"]))
    await expect(monitor.by("call-1")).to_contain_text(number_re(number))
    await expect(monitor.by("absent-list")).not_to_contain_text(number_re(number))
    await expect(operator.by("current-number")).to_have_text(number_re(number))
    await expect(display.by("current-number")).to_have_text(number_re(number))
    cleared = [e for e in await events(screens) if e["type"] == "TicketCalled"]
    assert cleared[-1]["data"].get("reason") == "absence_cleared", cleared[-1]

    # --- transfer to the second-stage service: second wait 0 -> 1 ------------------------------
    await expect(monitor.by("second-wait-T")).to_have_text(number_re(0))
    await operator.by("transfer").click()
    await operator.by("transfer-service").select_option("T")
    await operator.by("transfer-confirm").click()
    await expect(monitor.by("second-wait-T")).to_have_text(number_re(1))
    await expect(monitor.by("calling")).not_to_contain_text(number_re(number))
    await expect(display.by("current-number")).not_to_have_text(number_re(number))

    # counter 2 (second stage) calls it: same number, second wait back to 0
    await screens.post("/api/counters/2/open")
    called = await screens.post("/api/counters/2/call-next")
    assert (called["ticket"]["number"], called["ticket"]["stage"]) == (number, 2)
    await expect(monitor.by("call-2")).to_contain_text(number_re(number))
    await expect(monitor.by("second-wait-T")).to_have_text(number_re(0))

    for screen in (kiosk, monitor, display, operator):
        assert screen.loads == 1, f"{screen.name} was reloaded"


async def events(screens: Screens) -> list[dict[str, Any]]:
    store = screens.edge.writer.store
    return [{"type": e.type, "data": e.data} for e in store.events()]


async def issued_events(screens: Screens) -> list[dict[str, Any]]:
    return [e for e in await events(screens) if e["type"] == "TicketIssued"]


@pytest.mark.parametrize("lang", ["ja", "en"])
async def test_paper_out_keeps_the_number_on_screen(screens: Screens, lang: str) -> None:
    kiosk = await screens.open("kiosk.html", wait_for="service-B", kiosk="k1")
    if lang != "ja":
        await kiosk.by(f"lang-{lang}").click()
        await wait_until(lambda: _lang_is(kiosk, lang), what=f"kiosk in {lang}")
    sim_device(PRINTER_SIM).faults.paper_out = True
    data = await take_ticket(kiosk, "B")
    assert data["print"]["printed"] is False
    assert data["print"]["reason"] == "paper_out"
    await expect(kiosk.by("ticket-result")).to_be_visible()
    await expect(kiosk.by("ticket-number")).to_be_visible()
    await expect(kiosk.by("ticket-number")).to_have_text(number_re(data["ticket"]["number"]))
    status = kiosk.by("print-status")
    await expect(status).to_have_attribute("data-printed", "false")
    said = data["print"]["message"][lang]
    await expect(status).to_contain_text(said)  # "用紙切れです" / "Out of paper"
    await kiosk.shoot(f"kiosk-paper-out-{lang}")
    # the kiosk-wide banner tells the next visitor too (pushed device state, no reload)
    await close_result(kiosk)
    await expect(kiosk.by("printer-banner")).to_be_visible()
    assert kiosk.loads == 1


async def _lang_is(screen: Screen, lang: str) -> bool:
    return await screen.page.get_attribute("html", "lang") == lang


async def test_backyard_shows_device_health_live(screens: Screens) -> None:
    backyard = await screens.open("backyard.html", wait_for="device-printer-k1")
    printer = backyard.by("device-printer-k1")
    await expect(printer).to_have_attribute("data-state", "ok")
    await expect(backyard.by("service-A")).to_be_visible()
    await expect(backyard.by("counter-1")).to_be_visible()
    await expect(backyard.by("device-led")).to_be_visible()

    sim_device(PRINTER_SIM).faults.paper_out = True
    await screens.post("/api/tickets", {"service": "A", "kiosk": "k1", "lang": "ja"}, 201)
    await expect(printer).to_have_attribute("data-state", "error")
    await expect(printer).to_contain_text("用紙切れ")  # a word, not colour alone
    await expect(backyard.by("waiting-A")).to_have_text(number_re(1))

    sim_device(PRINTER_SIM).faults.paper_out = False
    await screens.post("/api/tickets", {"service": "A", "kiosk": "k1", "lang": "ja"}, 201)
    await expect(printer).to_have_attribute("data-state", "ok", timeout=10_000)
    words = texts("backyard", "ja")
    await expect(backyard.by("counter-3")).to_contain_text(words["backyard.counter.closed"])
    await screens.post("/api/counters/3/open")
    await expect(backyard.by("counter-3")).to_contain_text(words["backyard.counter.open"])
    assert backyard.loads == 1


async def test_web_ticket_checks_in_by_scan_at_the_kiosk(screens: Screens) -> None:
    kiosk = await screens.open("kiosk.html", wait_for="service-A", kiosk="k1")
    web = await screens.post("/api/tickets", {"service": "B", "channel": "web", "lang": "ja"},
                             201)
    await kiosk.scan(STATUS_URL.format(token=web["ticket"]["token"]))
    result = kiosk.by("checkin-result")
    await expect(result).to_be_visible()
    await expect(result).to_contain_text(number_re(web["ticket"]["number"]))
    assert [e["type"] for e in await events(screens)][-1] == "TicketCheckedIn"


async def test_discover_page_lists_this_edge(screens_discovery: Screens) -> None:
    screens = screens_discovery
    page = await screens.open("discover.html", wait_for="edge", alternatives=("no-edges",))
    # other edges on the LAN (or other test runs on this machine) may be listed too
    found = page.by("edge").filter(has_text="screens-site")
    await expect(found).to_be_visible(timeout=15_000)  # the page looks again every 5 s
    await expect(found).to_contain_text("screens-site")
    await expect(found).to_contain_text(screens.url.split("//")[1].split(":")[1])  # the port
