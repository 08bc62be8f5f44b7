"""Staff exports and erasure (issue 14 item 6, must-show): CSV in the chosen columns and order,
UTF-8 with a BOM and cp932, contacts opened only for staff; erasing chosen IDs leaves no trace
of their phone or e-mail in the SQLite file or in a PostgreSQL dump, gives places back, and
keeps everyone else's data."""

from __future__ import annotations

import asyncio
import csv
import datetime as dt
import io
import shutil
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from store_support import Db, hub_store

from edge.domain.calendar import Calendar
from hub.reservations.booking import Policy, add_slots, book
from hub.reservations.imports import import_ids
from hub.reservations.records import erase, export_csv
from hub.reservations.slots import Pattern, rows
from hub.reservations.tables import reservation_ids, reservation_slots, reservations
from hub.reservations.window import TOKYO
from hub.settings import HubSettings

SETTINGS = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1")
NOW = dt.datetime(2027, 1, 4, 10, 0, tzinfo=TOKYO)
DAY = dt.date(2027, 1, 20)
PEOPLE = {"ERAS0001": ("erase-me@example.jp", "09011112222"),
          "KEEP0002": ("keep-me@example.jp", "0312345678")}


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Db]:
    pg = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    async with hub_store(request.param, tmp_path, pg, "records") as got:
        yield got


async def _booked(db: Db) -> None:
    body = "予約ID,区民事務所コード\n" + "".join(f"{r},0001\n" for r in PEOPLE)
    assert not (await import_ids(db.store, body.encode(), NOW)).errors
    await add_slots(db.store, rows(Pattern("0001", "nerima-main", "M", "mycard", DAY, DAY,
                                           frozenset(range(7)), dt.time(9, 0), dt.time(9, 30),
                                           30, 2, NOW - dt.timedelta(days=30)),
                                   Calendar(), "0001"))
    async with db.store.read() as tx:
        slot = int((await tx.conn.execute(select(reservation_slots.c.id))).scalar_one())
    for rid, (mail, phone) in PEOPLE.items():
        await book(db.store, SETTINGS, Policy(), rid=rid, slot_id=slot, pin="1234",
                   phone=phone, email=mail, lang="ja", now=NOW)


async def test_export_in_the_chosen_columns_and_encodings(db: Db) -> None:
    await _booked(db)
    for encoding, decode in (("utf-8-sig", "utf-8-sig"), ("cp932", "cp932")):
        out = await export_csv(db.store, SETTINGS, office="0001", first=DAY, last=DAY,
                               columns=["email", "rid", "time"], encoding=encoding)
        if encoding == "utf-8-sig":
            assert out.data.startswith(b"\xef\xbb\xbf")
        table = list(csv.reader(io.StringIO(out.data.decode(decode))))
        assert table[0] == ["メールアドレス", "予約ID", "開始時刻"]
        assert sorted(table[1:]) == [["erase-me@example.jp", "ERAS0001", "09:00"],
                                     ["keep-me@example.jp", "KEEP0002", "09:00"]]
        assert out.rows == 2


def _sqlite_files(path: str) -> bytes:
    """The database file and its write-ahead log, as on the disk."""
    wal = Path(path + "-wal")
    return Path(path).read_bytes() + (wal.read_bytes() if wal.exists() else b"")


async def test_erasure_leaves_no_trace(db: Db) -> None:
    await _booked(db)
    done = await erase(db.store, ["ERAS0001"])
    assert (done.ids, done.reservations, done.places_returned) == (1, 1, 1)
    async with db.store.read() as tx:
        left = [r for (r,) in (await tx.conn.execute(select(reservations.c.rid))).all()]
        ids = [r for (r,) in (await tx.conn.execute(select(reservation_ids.c.rid))).all()]
        booked = (await tx.conn.execute(select(func.sum(reservation_slots.c.booked)))).scalar()
    assert (left, ids, booked) == (["KEEP0002"], ["KEEP0002"], 1)
    out = await export_csv(db.store, SETTINGS, office="0001", first=DAY, last=DAY,
                           columns=["rid", "email"])
    assert b"keep-me@example.jp" in out.data
    assert b"erase-me" not in out.data
    if db.schema is None:
        raw = await asyncio.to_thread(_sqlite_files, db.url.removeprefix("sqlite:///"))
    else:
        exe = shutil.which("pg_dump") or "/usr/bin/pg_dump"
        proc = await asyncio.create_subprocess_exec(
            exe, "--no-owner", "-n", db.schema, db.url, stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE)
        raw, err = await proc.communicate()
        assert proc.returncode == 0, err.decode()
    for trace in (b"ERAS0001", b"erase-me@example.jp", b"09011112222"):
        assert trace not in raw, trace
    assert b"KEEP0002" in raw  # the dump is real: the kept reservation is in it


async def test_one_reminder_the_day_before_from_ten(db: Db) -> None:
    from collections import deque

    from hub.notify.senders import MemorySink, SinkMessage
    from hub.reservations.pages import TEXTS
    from hub.reservations.reminders import send_due

    await _booked(db)  # two reservations on 2027-01-20 with e-mail addresses
    box: deque[SinkMessage] = deque()
    sink = MemorySink("email", box)
    early = dt.datetime(2027, 1, 19, 9, 59, tzinfo=TOKYO)
    assert await send_due(db.store, SETTINGS, sink, TEXTS, early) == 0
    two_days = dt.datetime(2027, 1, 18, 12, 0, tzinfo=TOKYO)
    assert await send_due(db.store, SETTINGS, sink, TEXTS, two_days) == 0
    at_ten = dt.datetime(2027, 1, 19, 10, 0, tzinfo=TOKYO)
    assert await send_due(db.store, SETTINGS, sink, TEXTS, at_ten) == 2
    assert await send_due(db.store, SETTINGS, sink, TEXTS, at_ten) == 0  # once only
    assert sorted(m.to for m in box) == ["erase-me@example.jp", "keep-me@example.jp"]
    assert all("/r/done/" in m.body and "1234" not in m.body for m in box)
    assert all("2027年1月20日" in m.subject for m in box)


async def test_arrivals_come_from_the_sites_events(db: Db) -> None:
    import hashlib
    import json

    from hub.reservations.records import today
    from hub.store.schema import events

    await _booked(db)
    async with db.store.read() as tx:
        token = str((await tx.conn.execute(select(reservations.c.token).where(
            reservations.c.rid == "KEEP0002"))).scalar_one())
    key = hashlib.sha256(token.encode()).hexdigest()
    async with db.store.begin() as tx:  # as ingest stores the kiosk's check-in
        await tx.conn.execute(events.insert().values(
            site="nerima-main", seq=1, id="e-1", at="2027-01-20T08:58:00+09:00",
            day="2027-01-20", type="TicketIssued", received_at=NOW,
            data=json.dumps({"ticket": "t1", "number": 7, "channel": "reservation",
                             "reservation": key, "service": "M"})))
    during = await today(db.store, "0001", dt.datetime(2027, 1, 20, 9, 10, tzinfo=TOKYO))
    assert {(v.rid, v.state, v.number) for v in during} == {
        ("KEEP0002", "arrived", 7), ("ERAS0001", "expected", None)}
    after = await today(db.store, "0001", dt.datetime(2027, 1, 20, 12, 0, tzinfo=TOKYO))
    assert {(v.rid, v.state) for v in after} == {("KEEP0002", "arrived"),
                                                  ("ERAS0001", "no_show")}
