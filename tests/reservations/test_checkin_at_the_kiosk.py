"""A booking checks in at a real edge's kiosk and yields a priority ticket, also with the hub
stopped (issue 14 item 5 and must-show): a resident books on the hub's pages, the confirmation
e-mail (aiosmtpd) carries the link whose QR the kiosk scans; the hub pushes the day's bookings
to the site over mosquitto; the hub stops; in Chromium the kiosk scans the link from the e-mail
and prints a priority ticket for the reserved service. A second scan is refused; a reservation
ticket without a booking is refused."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from pathlib import Path

import aiohttp
from browser.support import scan
from conftest import free_port
from mail_support import SmtpSink
from playwright.async_api import async_playwright, expect
from support import TZ
from sync_support import Mosquitto, unique_site, until

from edge.app import SyncOptions, build_edge, start_edge
from edge.config import parse_site_config
from edge.domain.calendar import Calendar
from edge.domain.clock import ManualClock
from edge.web.api import RESERVATIONS
from hub.app import start_hub
from hub.reservations.booking import add_slots
from hub.reservations.imports import import_ids
from hub.reservations.slots import Pattern, rows
from hub.settings import HubSettings
from hub.store.store import use_clock

DAY = dt.date(2027, 1, 20)  # a Wednesday
BOOKED_AT = dt.datetime(2027, 1, 6, 10, 0, tzinfo=TZ)  # within the window (45 days .. 3 days)
ON_THE_DAY = dt.datetime(2027, 1, 20, 8, 45, tzinfo=TZ)


def site_toml(site: str) -> str:
    return f"""[site]
id = "{site}"
name = {{ ja = "練馬区民事務所", en = "Nerima Residents Office" }}

[[services]]
code = "M"
name = {{ ja = "マイナンバーカード交付", en = "My Number card pick-up" }}
range = [1, 499]

[[services]]
code = "A"
name = {{ ja = "住民異動届", en = "Moving in or out" }}
range = [501, 999]

[[counters]]
id = "1"
name = {{ ja = "1番窓口", en = "Counter 1" }}
services = ["M", "A"]

[[devices]]
id = "printer-k1"
kind = "printer"
profile = "epson-tm-t88vi"
url = "sim://{site}-printer"
kiosk = "k1"

[calendar]
national_holidays = false
year_end = []
"""


async def test_the_emailed_qr_checks_in_at_the_kiosk_with_the_hub_down(
        tmp_path: Path, chromium_path: Path) -> None:
    clock = [BOOKED_AT]
    use_clock(lambda: clock[0])
    broker = Mosquitto(tmp_path).start()
    sink = SmtpSink()
    sink.controller.start()
    site, prefix = unique_site("resv"), "mdg-resv"
    text = site_toml(site)
    settings = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1", smtp_url=sink.url,
                           smtp_from="yoyaku@city.example.jp")
    hub = await start_hub(f"sqlite:///{tmp_path}/hub.db", broker.url, prefix, port=0,
                          settings=settings)
    hub_up = True
    try:
        await hub.set_config(site, text)
        assert not (await import_ids(hub.store, "予約ID,区民事務所コード\nQRCK0001,0001\n"
                                     .encode(), BOOKED_AT)).errors
        await add_slots(hub.store, rows(Pattern(
            "0001", site, "M", "mycard", DAY, DAY, frozenset(range(7)), dt.time(9, 0),
            dt.time(9, 30), 30, 2, BOOKED_AT - dt.timedelta(days=20)), Calendar(), "0001"))

        # the resident books on the hub's pages (two weeks before)
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{hub.url}/r?lang=ja", data={"rid": "QRCK0001"},
                                 allow_redirects=False) as r:
                slots_url = hub.url + r.headers["Location"]
            async with http.get(slots_url) as r:
                slot = re.search(r'name="slot" value="(\d+)"', await r.text())
            assert slot is not None
            ctx = slots_url.split("/r/slots/")[1].split("?")[0]
            async with http.post(f"{hub.url}/r/book/{ctx}/{slot.group(1)}?lang=ja",
                                 data={"email": "resident@example.jp", "phone": "",
                                       "pin": "1357", "pin2": "1357"},
                                 allow_redirects=False) as r:
                assert r.status == 303
        await until(lambda: _has_mail(sink), "the confirmation e-mail", 20)
        link = re.search(r"\S*/r/done/[A-Za-z0-9_-]+\S*", sink.messages[0][1].get_content())
        assert link is not None

        # on the day: the hub pushes the day's bookings, the edge keeps them, the hub stops
        clock[0] = ON_THE_DAY
        edge = build_edge(parse_site_config(text), tmp_path / "edge.db",
                          ManualClock(ON_THE_DAY), sync=SyncOptions(broker.url, prefix=prefix))
        port = free_port()
        runner = await start_edge(edge, "127.0.0.1", port)
        try:
            assert hub.ingest is not None
            hub.ingest.config_changed()
            await until(lambda: _booked(edge.app[RESERVATIONS]), "the bookings reach the site",
                        30)
            await hub.stop()
            hub_up = False
            broker.stop()

            async with async_playwright() as pw:
                browser = await pw.chromium.launch(executable_path=str(chromium_path))
                page = await browser.new_page(viewport={"width": 1080, "height": 1920})
                await page.goto(f"http://127.0.0.1:{port}/ui/kiosk.html?kiosk=k1")
                await page.wait_for_selector("body[data-ready=true]", state="attached")
                await scan(page, link.group(0))
                result = page.get_by_test_id("checkin-result")
                await expect(result).to_have_attribute("data-outcome", "checked_in")
                await expect(page.get_by_test_id("checkin-number")).to_have_text(
                    re.compile(r"^\s*1\s*$"))
                await page.get_by_test_id("dialog-close").click()
                await scan(page, link.group(0))  # the same booking again
                await expect(page.get_by_test_id("checkin-error")).to_have_attribute(
                    "data-code", "already_checked_in")
                await browser.close()
            issued = [e for e in edge.writer.store.events() if e.type == "TicketIssued"]
            assert len(issued) == 1
            assert issued[0].data["channel"] == "reservation"
            assert issued[0].data["priority"] is True
            assert issued[0].data["service"] == "M"
            assert issued[0].data["kiosk"] == "k1"
            async with aiohttp.ClientSession() as http, http.post(
                    f"http://127.0.0.1:{port}/api/tickets",
                    json={"service": "M", "channel": "reservation"}) as r:
                assert r.status in (401, 403, 422)  # never without a booking
        finally:
            await runner.cleanup()
    finally:
        use_clock(None)
        if hub_up:
            await hub.stop()
            broker.stop()
        sink.controller.stop()


async def _has_mail(sink: SmtpSink) -> bool:
    await asyncio.sleep(0)
    return bool(sink.messages)


async def _booked(book: object) -> bool:
    await asyncio.sleep(0)
    return len(book) > 0  # type: ignore[arg-type]
