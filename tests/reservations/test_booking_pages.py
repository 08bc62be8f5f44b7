"""The residents' booking pages (issue 14 item 4) over HTTP and in Chromium at 390x844: enter
the ID, see only ○/△/× (never a count, in HTML or headers), book with e-mail and a PIN, get the
confirmation with its QR; refused at another office on a weekday, allowed on a main-office
Saturday; a slot taken meanwhile sends the resident back to the list with "just taken"."""

from __future__ import annotations

import asyncio
import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from playwright.async_api import async_playwright, expect
from sqlalchemy import select

from edge.domain.calendar import Calendar
from hub.app import Hub, start_hub
from hub.reservations.booking import add_slots
from hub.reservations.imports import import_ids
from hub.reservations.slots import Pattern, rows
from hub.reservations.tables import reservation_slots, reservations
from hub.reservations.window import TOKYO, window
from hub.settings import HubSettings
from hub.store.store import now_utc

SETTINGS = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1")
SHOTS = Path("test-artifacts/reservations")
MAIN, OTHER = "0001", "0002"


def bookable_day(saturday: bool) -> dt.date:
    """A day whose slots can be booked today (the window is relative to the real clock)."""
    now = now_utc().astimezone(TOKYO)
    d = now.date() + dt.timedelta(days=8)
    while True:
        if (d.weekday() == 5) == saturday and d.weekday() != 6 and \
                window(d, Calendar()).contains(now) and Calendar().closed == frozenset():
            from edge.domain.calendar import day
            if day(Calendar(), None, d).open:
                return d
        d += dt.timedelta(days=1)


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    h = await start_hub(f"sqlite:///{tmp_path}/hub.db", None, port=0, settings=SETTINGS)
    body = "予約ID,区民事務所コード\nAB12CD34,0002\nEF56GH78,0001\n"
    assert not (await import_ids(h.store, body.encode("cp932"), now_utc())).errors
    published = now_utc() - dt.timedelta(days=60)
    for office, day_, capacity in ((OTHER, bookable_day(False), 2), (MAIN, bookable_day(False), 1),
                                   (MAIN, bookable_day(True), 2)):
        pattern = Pattern(office, "nerima-main", "M", "mycard", day_, day_, frozenset(range(7)),
                          dt.time(9, 0), dt.time(10, 0), 30, capacity, published)
        await add_slots(h.store, rows(pattern, Calendar(), MAIN))
    yield h
    await h.stop()


async def _slot_ids(hub: Hub, office: str, saturday: bool) -> list[int]:
    async with hub.store.read() as tx:
        got = (await tx.conn.execute(select(reservation_slots.c.id, reservation_slots.c.starts_at)
                                     .where(reservation_slots.c.office == office))).all()
    return [int(i) for i, s in got if (s.astimezone(TOKYO).weekday() == 5) == saturday]


async def test_booking_over_http_shows_marks_never_counts(hub: Hub) -> None:
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{hub.url}/r?lang=ja", data={"rid": "ａｂ１２ｃｄ３４"},
                             allow_redirects=False) as r:
            assert r.status == 303
            slots_url = hub.url + r.headers["Location"]
        async with http.get(slots_url) as r:
            page = await r.text()
            assert r.status == 200
            headers = " ".join(f"{k}:{v}" for k, v in r.headers.items())
        assert "○" in page
        assert "capacity" not in page
        assert not re.search(r"残り\s*\d|\d+\s*(席|名|人)", page)
        assert "ETag" not in headers
        own = await _slot_ids(hub, OTHER, False)
        main_weekday = await _slot_ids(hub, MAIN, False)
        main_saturday = await _slot_ids(hub, MAIN, True)
        assert f'value="{own[0]}"' in page
        assert f'value="{main_weekday[0]}"' not in page  # another office's weekday: not offered
        assert f'value="{main_saturday[0]}"' in page  # the main office's Saturday: offered
        ctx = slots_url.split("/r/slots/")[1].split("?")[0]
        book = f"{hub.url}/r/book/{ctx}/{main_weekday[0]}?lang=ja"
        form = {"email": "resident@example.jp", "phone": "", "pin": "1234", "pin2": "1234"}
        async with http.post(book, data=form, allow_redirects=False) as r:  # forced by hand
            assert r.status == 409
            assert "平日は予約できません" in await r.text()
        async with http.post(f"{hub.url}/r/book/{ctx}/{own[0]}?lang=ja",
                             data={**form, "pin2": "9999"}, allow_redirects=False) as r:
            assert r.status == 400
            assert "一致しません" in await r.text()
        async with http.post(f"{hub.url}/r/book/{ctx}/{own[0]}?lang=ja", data=form,
                             allow_redirects=False) as r:
            assert r.status == 303
            done_url = hub.url + r.headers["Location"]
        async with http.get(done_url) as r:
            done = await r.text()
        assert "予約しました" in done
        assert 'data-testid="checkin-qr"' in done
        assert "AB12CD34" in done
        async with http.post(f"{hub.url}/r?lang=ja", data={"rid": "AB12CD34"},
                             allow_redirects=False) as r:
            assert r.status == 409  # one active reservation per ID


async def test_a_slot_taken_meanwhile_sends_back_with_just_taken(hub: Hub) -> None:
    one = (await _slot_ids(hub, MAIN, False))[0]  # capacity 1
    async with hub.store.begin() as tx:  # someone else takes the last place first
        await tx.conn.execute(reservation_slots.update().where(reservation_slots.c.id == one)
                              .values(booked=1))
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{hub.url}/r?lang=en", data={"rid": "EF56GH78"},
                             allow_redirects=False) as r:
            ctx = r.headers["Location"].split("/r/slots/")[1].split("?")[0]
        form = {"email": "a@example.jp", "phone": "", "pin": "1234", "pin2": "1234"}
        async with http.post(f"{hub.url}/r/book/{ctx}/{one}?lang=en", data=form) as r:
            page = await r.text()
        assert "just become full" in page
        assert "Full" in page
    async with hub.store.read() as tx:
        assert (await tx.conn.execute(select(reservations))).first() is None


async def test_booking_on_a_phone(hub: Hub, chromium_path: Path) -> None:
    await asyncio.to_thread(SHOTS.mkdir, parents=True, exist_ok=True)
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium_path))
        for lang in ("en", "zh", "ko", "ja"):  # ja last: it books
            page = await browser.new_page(viewport={"width": 390, "height": 844})
            await page.goto(f"{hub.url}/r?lang={lang}")
            await page.screenshot(path=str(SHOTS / f"start-{lang}.png"))
            await page.fill("#rid", "ab12cd34")
            await page.locator("form button[type=submit]").click()
            await expect(page.locator(".slot").first).to_be_visible()
            await page.screenshot(path=str(SHOTS / f"slots-{lang}.png"), full_page=True)
            if lang != "ja":
                await page.close()
                continue
            await page.locator(".slot label").first.click()
            await page.locator("form button[type=submit]").click()
            await page.fill("#email", "resident@example.jp")
            await page.fill("#pin", "1234")
            await page.fill("#pin2", "1234")
            await page.screenshot(path=str(SHOTS / "book-ja.png"), full_page=True)
            await page.locator("form button[type=submit]").click()
            await expect(page.locator("#booked")).to_be_visible()
            await expect(page.get_by_test_id("checkin-qr")).to_be_visible()
            await page.screenshot(path=str(SHOTS / "done-ja.png"), full_page=True)
            width = await page.evaluate("document.documentElement.scrollWidth")
            assert width <= 390  # nothing wider than the phone
            await page.close()
        await browser.close()


async def test_the_confirmation_goes_by_email_and_sms_with_a_link_never_the_pin(
        tmp_path: Path) -> None:
    from mail_support import SmsGateway, SmtpSink

    sink, sms = SmtpSink(), SmsGateway()
    sink.controller.start()
    await sms.start()
    settings = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1", smtp_url=sink.url,
                           smtp_from="yoyaku@city.example.jp", sms_url=sms.url)
    h = await start_hub(f"sqlite:///{tmp_path}/hub.db", None, port=0, settings=settings)
    try:
        assert not (await import_ids(h.store, "予約ID,区民事務所コード\nMAIL0001,0001\n".encode(),
                                     now_utc())).errors
        d = bookable_day(False)
        await add_slots(h.store, rows(Pattern(MAIN, "nerima-main", "M", "mycard", d, d,
                                              frozenset(range(7)), dt.time(9, 0),
                                              dt.time(9, 30), 30, 2,
                                              now_utc() - dt.timedelta(days=60)),
                                      Calendar(), MAIN))
        slot = (await _slot_ids(h, MAIN, False))[0]
        async with aiohttp.ClientSession() as http:
            async with http.post(f"{h.url}/r?lang=en", data={"rid": "MAIL0001"},
                                 allow_redirects=False) as r:
                ctx = r.headers["Location"].split("/r/slots/")[1].split("?")[0]
            async with http.post(f"{h.url}/r/book/{ctx}/{slot}?lang=en",
                                 data={"email": "resident@example.jp", "phone": "090-1234-5678",
                                       "pin": "4821", "pin2": "4821"},
                                 allow_redirects=False) as r:
                assert r.status == 303
                token = r.headers["Location"].split("/r/done/")[1].split("?")[0]
            async with http.get(f"{h.url}/r/done/{token}?lang=en&mail=1") as r:
                assert "We sent a confirmation e-mail." in await r.text()
        for _ in range(100):
            if sink.messages:
                break
            await asyncio.sleep(0.05)
        [(to, msg)] = sink.messages
        assert to == ["resident@example.jp"]
        body = msg.get_content()
        assert f"/r/done/{token}" in body
        assert "MAIL0001" in body
        assert "4821" not in body
        assert "1234-5678" not in body
        assert str(msg["Content-Language"]) == "en"
        for _ in range(100):  # and by SMS, the mobile number given
            if sms.received:
                break
            await asyncio.sleep(0.05)
        [(_auth, sent)] = sms.received
        assert sent["to"] == "+819012345678"
        assert f"/r/done/{token}" in sent["text"]
        assert "4821" not in sent["text"]
    finally:
        await h.stop()
        sink.controller.stop()
        if sms.runner is not None:
            await sms.runner.cleanup()


async def test_manage_changes_and_cancels_with_the_pin(hub: Hub) -> None:
    own = await _slot_ids(hub, OTHER, False)
    form = {"email": "resident@example.jp", "phone": "", "pin": "2468", "pin2": "2468"}
    async with aiohttp.ClientSession() as http:
        async with http.post(f"{hub.url}/r?lang=ja", data={"rid": "AB12CD34"},
                             allow_redirects=False) as r:
            ctx = r.headers["Location"].split("/r/slots/")[1].split("?")[0]
        async with http.post(f"{hub.url}/r/book/{ctx}/{own[0]}?lang=ja", data=form,
                             allow_redirects=False) as r:
            assert r.status == 303
        manage = f"{hub.url}/r/manage?lang=ja"
        async with http.post(manage, data={"rid": "AB12CD34", "pin": "1111"},
                             allow_redirects=False) as r:
            assert r.status == 401
            wrong = await r.text()
        async with http.post(manage, data={"rid": "ZZ99ZZ99", "pin": "1111"},
                             allow_redirects=False) as r:
            assert r.status == 401
            unknown = await r.text()
        # a wrong PIN and an unknown ID read the same: no oracle of which IDs exist
        assert re.sub(r'value="[^"]*"', "", wrong) == re.sub(r'value="[^"]*"', "", unknown)
        async with http.post(manage, data={"rid": "ab12cd34", "pin": "2468"},
                             allow_redirects=False) as r:
            assert r.status == 303
            mine = hub.url + r.headers["Location"]
        async with http.get(mine) as r:
            page = await r.text()
        assert "いまの予約" in page
        token = mine.split("/r/mine/")[1].split("?")[0]
        async with http.post(f"{hub.url}/r/mine/{token}/change?lang=ja",
                             data={"slot": str(own[1])}, allow_redirects=False) as r:
            assert r.status == 303
        async with hub.store.read() as tx:
            booked = dict((await tx.conn.execute(select(reservation_slots.c.id,
                                                        reservation_slots.c.booked))).all())
        assert (booked[own[0]], booked[own[1]]) == (0, 1)
        async with http.post(f"{hub.url}/r/mine/{token}/cancel?lang=ja") as r:
            assert "取り消しました" in await r.text()
        async with hub.store.read() as tx:
            assert (await tx.conn.execute(select(reservation_slots.c.booked).where(
                reservation_slots.c.id == own[1]))).scalar() == 0
        async with http.get(mine) as r:
            assert r.status == 410  # the page token names a reservation that is gone


async def test_change_cancel_and_lockout_on_a_phone(hub: Hub, chromium_path: Path) -> None:
    """In Chromium at 390x844: another office's weekday is not offered while the main office's
    Saturday is; book; change with the PIN; five wrong PINs lock it (the right one too);
    another resident books and cancels with the PIN."""
    await asyncio.to_thread(SHOTS.mkdir, parents=True, exist_ok=True)
    main_weekday = (await _slot_ids(hub, MAIN, False))[0]
    main_saturday = (await _slot_ids(hub, MAIN, True))[0]
    async with async_playwright() as pw:
        browser = await pw.chromium.launch(executable_path=str(chromium_path))
        page = await browser.new_page(viewport={"width": 390, "height": 844}, locale="ja-JP")
        await page.goto(f"{hub.url}/r?lang=ja")
        await page.fill("#rid", "AB12CD34")  # an office-0002 ID
        await page.locator("form button[type=submit]").click()
        await expect(page.locator(f"#slot-{main_saturday}")).to_have_count(1)
        await expect(page.locator(f"#slot-{main_weekday}")).to_have_count(0)
        await page.locator(f"label[for=slot-{main_saturday}]").click()
        await page.locator("form button[type=submit]").click()
        await page.fill("#email", "resident@example.jp")
        await page.fill("#pin", "8642")
        await page.fill("#pin2", "8642")
        await page.locator("form button[type=submit]").click()
        await expect(page.locator("#booked")).to_be_visible()

        async def open_mine(pin: str) -> None:
            await page.goto(f"{hub.url}/r/manage?lang=ja")
            await page.fill("#rid", "ab12cd34")
            await page.fill("#pin", pin)
            await page.locator("form.card button[type=submit]").click()

        await open_mine("8642")
        await expect(page.locator("h1")).to_have_text("あなたの予約")
        await page.locator(".slot label").first.click()
        await page.get_by_role("button", name="この日時に変更する").click()
        await expect(page.locator("#booked")).to_be_visible()
        await page.screenshot(path=str(SHOTS / "changed-ja.png"), full_page=True)
        for _ in range(5):
            await open_mine("0000")
        await expect(page.locator("#errors")).to_contain_text("30分間")
        await page.screenshot(path=str(SHOTS / "locked-ja.png"), full_page=True)
        await open_mine("8642")  # the right PIN is locked out too
        await expect(page.locator("#errors")).to_contain_text("30分間")

        # another resident books and cancels with the PIN
        await page.goto(f"{hub.url}/r?lang=ja")
        await page.fill("#rid", "EF56GH78")
        await page.locator("form button[type=submit]").click()
        await page.locator(f"label[for=slot-{main_weekday}]").click()
        await page.locator("form button[type=submit]").click()
        await page.fill("#email", "other@example.jp")
        await page.fill("#pin", "1111")
        await page.fill("#pin2", "1111")
        await page.locator("form button[type=submit]").click()
        await page.goto(f"{hub.url}/r/manage?lang=ja")
        await page.fill("#rid", "EF56GH78")
        await page.fill("#pin", "1111")
        await page.locator("form.card button[type=submit]").click()
        await page.locator("#cancel").click()
        await expect(page.locator("#cancelled")).to_contain_text("取り消しました")
        await page.screenshot(path=str(SHOTS / "cancelled-ja.png"), full_page=True)
        await browser.close()
    async with hub.store.read() as tx:
        states = dict((await tx.conn.execute(select(reservations.c.rid,
                                                    reservations.c.status))).all())
    assert states == {"AB12CD34": "active", "EF56GH78": "cancelled"}
