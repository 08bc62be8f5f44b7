"""Staff make slots by pattern and close or shrink them (issue 14 item 1) over HTTP: closed
days get no slots, Saturdays only at the main office, closing a booked slot first shows the
reservation IDs affected and cancels nobody; every change is audited."""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import AsyncIterator
from pathlib import Path

import aiohttp
import pytest
from sqlalchemy import func, select
from staff_support import staff_cookie

from hub.app import Hub, start_hub
from hub.audit.tables import audit_log
from hub.reservations.booking import Policy, book
from hub.reservations.imports import import_ids
from hub.reservations.tables import reservation_ids, reservation_slots, reservations
from hub.reservations.window import TOKYO
from hub.settings import HubSettings
from hub.store.store import now_utc

SETTINGS = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1")


@pytest.fixture
async def hub(tmp_path: Path) -> AsyncIterator[Hub]:
    h = await start_hub(f"sqlite:///{tmp_path}/hub.db", None, port=0, settings=SETTINGS)
    yield h
    await h.stop()


def _csrf(page: str) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', page)
    assert found is not None
    return found.group(1)


async def test_slots_by_pattern_then_close_one_without_cancelling(hub: Hub) -> None:
    cookie = await staff_cookie(hub.store, SETTINGS, site="*")
    first = dt.date(2027, 1, 4)  # Mon; 1/11 is 成人の日
    async with aiohttp.ClientSession(cookies=cookie) as http:
        async with http.get(f"{hub.url}/admin/reservations?lang=ja&office=0002") as r:
            assert r.status == 200
            csrf = _csrf(await r.text())
        form = [("csrf", csrf), ("office", "0002"), ("site", "hayamiya"), ("service", "M"),
                ("group", "mycard"), ("first", "2027-01-04"), ("last", "2027-01-16"),
                ("start", "09:00"), ("end", "10:00"), ("every", "30"), ("capacity", "2"),
                ("publish", "2026-11-20T00:00"),
                *(("days", str(i)) for i in range(6))]  # Monday to Saturday asked for
        async with http.post(f"{hub.url}/admin/reservations/slots?lang=ja", data=form) as r:
            page = await r.text()
        # 9 weekdays (1/11 closed), no Saturday at a non-main office, 2 slots a day
        assert "予約枠を 18 件作りました" in page
        async with hub.store.read() as tx:
            starts = [s.astimezone(TOKYO) for (s,) in (await tx.conn.execute(
                select(reservation_slots.c.starts_at))).all()]
        assert {s.date() for s in starts}.isdisjoint({dt.date(2027, 1, 11), dt.date(2027, 1, 9)})
        assert min(s.date() for s in starts) == first

        await import_ids(hub.store, "予約ID,区民事務所コード\nSTAF0001,0002\n".encode(),
                         now_utc())
        async with hub.store.read() as tx:
            slot = int((await tx.conn.execute(select(reservation_slots.c.id)
                                              .order_by(reservation_slots.c.starts_at))
                        ).scalars().first() or 0)
        await book(hub.store, SETTINGS, Policy(), rid="STAF0001", slot_id=slot, pin="1234",
                   phone=None, email=None, lang="ja",
                   now=dt.datetime(2026, 12, 1, 10, 0, tzinfo=TOKYO))
        async with http.post(f"{hub.url}/admin/reservations/slot?lang=ja",
                             data={"csrf": csrf, "slot": str(slot), "capacity": "2",
                                   "closed": "1"}) as r:
            shown = await r.text()
        assert "STAF0001" in shown  # who is affected, before anything changes
        async with hub.store.read() as tx:
            assert (await tx.conn.execute(select(reservation_slots.c.closed).where(
                reservation_slots.c.id == slot))).scalar() is False
        async with http.post(f"{hub.url}/admin/reservations/slot?lang=ja",
                             data={"csrf": csrf, "slot": str(slot), "capacity": "2",
                                   "closed": "1", "confirm": "1"}) as r:
            assert "変更しました" in await r.text()
    async with hub.store.read() as tx:
        assert (await tx.conn.execute(select(reservation_slots.c.closed).where(
            reservation_slots.c.id == slot))).scalar() is True
        assert (await tx.conn.execute(select(reservations.c.status))).scalar() == "active"
        actions = [a for (a,) in (await tx.conn.execute(select(audit_log.c.action)
                                                        .order_by(audit_log.c.id))).all()]
    assert actions[-2:] == ["reservation_slots_created", "reservation_slot_changed"]


async def test_a_bad_pattern_is_refused_and_staff_only(hub: Hub) -> None:
    cookie = await staff_cookie(hub.store, SETTINGS, site="*")
    async with aiohttp.ClientSession(cookies=cookie) as http:
        async with http.get(f"{hub.url}/admin/reservations") as r:
            csrf = _csrf(await r.text())
        async with http.post(f"{hub.url}/admin/reservations/slots?lang=ja",
                             data={"csrf": csrf, "office": "0002", "site": "x",
                                   "first": "2027-02-01", "last": "2027-01-01",
                                   "start": "09:00", "end": "10:00", "every": "30",
                                   "capacity": "2", "publish": "2026-12-01T00:00",
                                   "days": "0"}) as r:
            assert r.status == 400
            assert "期間・時刻" in await r.text()
    counter = await staff_cookie(hub.store, SETTINGS, role="counter_staff", site="*")
    async with aiohttp.ClientSession(cookies=counter) as http, \
            http.get(f"{hub.url}/admin/reservations") as r:
        assert r.status == 403


async def test_export_and_erase_pages_are_audited(hub: Hub) -> None:
    await import_ids(hub.store, "予約ID,区民事務所コード\nPAGE0001,0002\n".encode(), now_utc())
    cookie = await staff_cookie(hub.store, SETTINGS, site="*")
    async with aiohttp.ClientSession(cookies=cookie) as http:
        async with http.get(f"{hub.url}/admin/reservations.csv",
                            params=[("office", "0002"), ("from", "2027-01-01"),
                                    ("to", "2027-01-31"), ("columns", "rid"),
                                    ("columns", "date"), ("encoding", "cp932")]) as r:
            assert r.status == 200
            assert "shift_jis" in r.headers["Content-Type"]
            assert (await r.read()).decode("cp932").splitlines()[0] == "予約ID,予約日"
        async with http.get(f"{hub.url}/admin/reservations.csv?office=02&from=x") as r:
            assert r.status == 400
        async with http.get(f"{hub.url}/admin/reservations?lang=ja") as r:
            csrf = _csrf(await r.text())
        async with http.post(f"{hub.url}/admin/reservations/erase?lang=ja",
                             data={"csrf": csrf, "ids": "page0001\nnot-an-id"}) as r:
            page = await r.text()
        assert "PAGE0001" in page
        assert "not-an-id" not in page
        async with http.post(f"{hub.url}/admin/reservations/erase?lang=ja",
                             data={"csrf": csrf, "ids": "PAGE0001", "confirm": "1"}) as r:
            assert "予約ID 1 件" in await r.text()
    async with hub.store.read() as tx:
        actions = [a for (a,) in (await tx.conn.execute(select(audit_log.c.action)
                                                        .order_by(audit_log.c.id))).all()]
    assert actions[-2:] == ["export", "reservation_data_erased"]


async def test_staff_upload_the_ward_file_beyond_the_form_limit(hub: Hub) -> None:
    cookie = await staff_cookie(hub.store, SETTINGS, site="*")
    big = "予約ID,区民事務所コード\r\n" + "".join(
        f"{i:08d},{1 + i % 6:04d}\r\n" for i in range(8000))  # ~136 kB: over the 64 kB limit
    bad = "予約ID,区民事務所コード\r\nAB12CD34,0001\r\nBAD,0001\r\n"
    async with aiohttp.ClientSession(cookies=cookie) as http:
        async with http.get(f"{hub.url}/admin/reservations?lang=ja") as r:
            csrf = _csrf(await r.text())

        async def upload(body: bytes, token: str | None = csrf) -> tuple[int, str]:
            form = aiohttp.FormData()
            form.add_field("file", body, filename="ids.csv", content_type="text/csv")
            form.add_field("id_column", "予約ID")
            form.add_field("office_column", "区民事務所コード")
            url = f"{hub.url}/admin/reservations/import?lang=ja"
            async with http.post(url + (f"&csrf={token}" if token else ""), data=form) as r:
                return r.status, await r.text()

        status, page = await upload(big.encode("cp932"))
        assert status == 200, page
        assert "新規 8000 件" in page
        status, page = await upload(big.encode("cp932"))
        assert "変更なし 8000 件" in page  # the same file again changes nothing
        status, page = await upload(bad.encode("utf-8-sig"))
        assert status == 400
        assert "3行目" in page
        assert (await upload(bad.encode(), token=None))[0] == 403
    async with hub.store.read() as tx:
        count = (await tx.conn.execute(select(func.count()).select_from(reservation_ids))
                 ).scalar()
    assert count == 8000  # nothing of the bad file
