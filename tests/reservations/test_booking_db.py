"""Database-enforced booking rules (issue 14, must-show 2) on SQLite and PostgreSQL: a slot's
capacity is never exceeded and an ID never holds two active reservations, under concurrent
attempts in one process and when two hub processes race; the office and Saturday rules; an ID
whose reservation date has passed may book again; imports are all-or-nothing and idempotent."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import random
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import func, select
from store_support import Db, hub_store

from edge.domain.calendar import Calendar
from hub.reservations.booking import BookingRefused, Policy, add_slots, book, mark
from hub.reservations.imports import import_ids
from hub.reservations.slots import Pattern, rows
from hub.reservations.tables import reservation_slots, reservations
from hub.reservations.window import TOKYO
from hub.settings import HubSettings
from hub.store import HubStore

SETTINGS = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1")
NOW = dt.datetime(2027, 1, 4, 10, 0, tzinfo=TOKYO)  # a Monday
PUBLISHED = dt.datetime(2026, 12, 1, 0, 0, tzinfo=TOKYO)
WEDNESDAY, SATURDAY = dt.date(2027, 1, 20), dt.date(2027, 1, 23)
MAIN, OTHER = "0001", "0002"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(params=["sqlite", "postgresql"])
async def db(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Db]:
    pg = request.getfixturevalue("postgres_url") if request.param == "postgresql" else None
    async with hub_store(request.param, tmp_path, pg, "restest") as got:
        yield got


def ids(n: int, prefix: str = "R") -> list[str]:
    return [f"{prefix}{i:07d}" for i in range(n)]


async def import_(store: HubStore, rids: list[str], office: str) -> None:
    body = "予約ID,区民事務所コード\n" + "".join(f"{r},{office}\n" for r in rids)
    got = await import_ids(store, body.encode("utf-8"), NOW)
    assert got.errors == []


async def make_slots(store: HubStore, office: str, day: dt.date, n: int,
                     capacity: int) -> list[int]:
    end = (dt.datetime(2000, 1, 1, 9, 0) + dt.timedelta(minutes=30 * n)).time()
    pattern = Pattern(office, "nerima-main", "M", "mycard", day, day, frozenset(range(7)),
                      dt.time(9, 0), end, 30, capacity, PUBLISHED)
    assert await add_slots(store, rows(pattern, Calendar(), MAIN)) == n
    async with store.read() as tx:
        got = (await tx.conn.execute(select(reservation_slots.c.id).where(
            reservation_slots.c.office == office).order_by(reservation_slots.c.id))).all()
    return [int(r[0]) for r in got][-n:]


async def attempt(store: HubStore, rid: str, slot: int, now: dt.datetime = NOW) -> str:
    try:
        await book(store, SETTINGS, Policy(main_office=MAIN), rid=rid, slot_id=slot, pin="1234",
                   phone="09012345678", email="resident@example.jp", lang="ja", now=now)
    except BookingRefused as exc:
        return exc.code
    return "booked"


async def check_invariants(store: HubStore) -> tuple[int, int]:
    """Every slot within capacity, no ID twice active, every place taken held by a booking."""
    async with store.read() as tx:
        c = tx.conn
        over = (await c.execute(select(func.count()).select_from(reservation_slots).where(
            reservation_slots.c.booked > reservation_slots.c.capacity))).scalar()
        taken = (await c.execute(select(func.coalesce(func.sum(reservation_slots.c.booked),
                                                      0)))).scalar()
        active = (await c.execute(select(func.count()).select_from(reservations).where(
            reservations.c.status == "active"))).scalar()
        holding = (await c.execute(select(func.count()).select_from(reservations).where(
            reservations.c.status.in_(("active", "past"))))).scalar()
        twice = (await c.execute(select(reservations.c.rid).where(
            reservations.c.status == "active").group_by(reservations.c.rid).having(
            func.count() > 1))).all()
    assert over == 0
    assert twice == []
    assert taken == holding  # a place is held by an active or a past reservation, never none
    return int(taken or 0), int(active or 0)


async def test_concurrent_attempts_never_overbook_nor_double_book(db: Db) -> None:
    rids = ids(12)
    await import_(db.store, rids, MAIN)
    slots = await make_slots(db.store, MAIN, WEDNESDAY, 3, 2)
    pairs = [(r, s) for r in rids for s in slots]
    random.Random(7).shuffle(pairs)
    results = await asyncio.gather(*(attempt(db.store, r, s) for r, s in pairs))
    assert results.count("booked") == 6  # 3 slots x 2 places
    assert set(results) <= {"booked", "full", "already_booked"}
    assert await check_invariants(db.store) == (6, 6)


@pytest.fixture
async def pg(postgres_url: str, tmp_path: Path) -> AsyncIterator[Db]:
    async with hub_store("postgresql", tmp_path, postgres_url, "restest") as got:
        yield got


async def test_two_hub_processes_race(pg: Db) -> None:
    """PostgreSQL, where hub processes run side by side (SQLite has one writer by design)."""
    db = pg
    assert db.schema is not None
    rids = ids(40)
    await import_(db.store, rids, MAIN)
    slots = await make_slots(db.store, MAIN, WEDNESDAY, 5, 2)
    pairs = [(r, s) for r in rids for s in slots]
    workers = []
    for seed in (1, 2):
        mine = pairs[:]
        random.Random(seed).shuffle(mine)
        workers.append(await asyncio.create_subprocess_exec(
            sys.executable, str(REPO / "tests" / "reservations" / "race_worker.py"), db.url,
            db.schema, NOW.isoformat(), json.dumps(mine), cwd=REPO,
            stdout=subprocess.PIPE, stderr=subprocess.PIPE,
            env={"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin"}))
    booked = 0
    for w in workers:
        out, err = await asyncio.wait_for(w.communicate(), 300)
        assert w.returncode == 0, err.decode()
        counts = json.loads(out.decode().strip().splitlines()[-1])
        assert set(counts) <= {"booked", "full", "already_booked"}, counts
        booked += counts.get("booked", 0)
    assert booked == 10  # 5 slots x 2 places, though 400 attempts came from two processes
    assert await check_invariants(db.store) == (10, 10)


async def test_an_id_books_only_at_its_office_except_main_office_saturdays(db: Db) -> None:
    await import_(db.store, ["AAAA0001"], OTHER)
    main_weekday = (await make_slots(db.store, MAIN, WEDNESDAY, 1, 2))[0]
    main_saturday = (await make_slots(db.store, MAIN, SATURDAY, 1, 2))[0]
    assert await attempt(db.store, "AAAA0001", main_weekday) == "other_office"
    assert await attempt(db.store, "AAAA0001", main_saturday) == "booked"
    assert await attempt(db.store, "ZZZZ9999", main_saturday) == "unknown_id"
    await check_invariants(db.store)


async def test_window_and_a_passed_date(db: Db) -> None:
    await import_(db.store, ["BBBB0001"], MAIN)
    slot = (await make_slots(db.store, MAIN, WEDNESDAY, 1, 1))[0]
    too_late = dt.datetime(2027, 1, 16, 9, 0, tzinfo=TOKYO)  # after Fri 1/15, the 3rd day
    assert await attempt(db.store, "BBBB0001", slot, too_late) == "not_bookable"
    assert await attempt(db.store, "BBBB0001", slot) == "booked"
    later = (await make_slots(db.store, MAIN, dt.date(2027, 2, 15), 1, 1))[0]
    assert await attempt(db.store, "BBBB0001", later) == "already_booked"
    # the day after the reservation's date the ID may book again
    assert await attempt(db.store, "BBBB0001", later,
                         dt.datetime(2027, 1, 21, 9, 0, tzinfo=TOKYO)) == "booked"
    await check_invariants(db.store)


async def test_imports_are_all_or_nothing_and_idempotent(db: Db) -> None:
    good = "予約ID,区民事務所コード\nＣＣＣＣ０００１,0001\ncccc0002,0002\n".encode("cp932")
    first = await import_ids(db.store, good, NOW)
    assert (first.added, first.unchanged, first.encoding) == (2, 0, "cp932")
    again = await import_ids(db.store, good, NOW)
    assert (again.added, again.unchanged, again.moved) == (0, 2, 0)
    bad = "予約ID,区民事務所コード\nCCCC0003,0001\nbad,0001\n".encode("utf-8-sig")
    refused = await import_ids(db.store, bad, NOW)
    assert [(e.line, e.code) for e in refused.errors] == [(3, "bad_id")]
    slot = (await make_slots(db.store, MAIN, WEDNESDAY, 1, 2))[0]
    assert await attempt(db.store, "CCCC0003", slot) == "unknown_id"  # nothing half-imported
    assert await attempt(db.store, "CCCC0001", slot) == "booked"


@pytest.mark.parametrize(("capacity", "booked", "closed", "shown"), [
    (2, 0, False, "free"), (2, 1, False, "few"), (2, 2, False, "full"), (3, 5, False, "full"),
    (2, 0, True, "full"), (0, 0, False, "full")])
def test_residents_see_marks_not_counts(capacity: int, booked: int, closed: bool,
                                        shown: str) -> None:
    assert mark(capacity, booked, closed) == shown


async def test_change_and_cancel_with_the_pin_and_a_lockout(db: Db) -> None:
    from hub.reservations.booking import AccessDenied, cancel, change, open_mine

    await import_(db.store, ["DDDD0001", "DDDD0002"], MAIN)
    first, second = await make_slots(db.store, MAIN, WEDNESDAY, 2, 1)
    assert await attempt(db.store, "DDDD0001", first) == "booked"
    mine = await open_mine(db.store, SETTINGS, "DDDD0001", "1234", NOW)
    assert mine.slot.id == first
    moved = await change(db.store, Policy(main_office=MAIN), mine, second, NOW)
    assert moved.id == second
    assert await attempt(db.store, "DDDD0002", second) == "full"  # taken by the change
    assert await attempt(db.store, "DDDD0002", first) == "booked"  # given back by it
    await check_invariants(db.store)

    for _ in range(4):
        with pytest.raises(AccessDenied) as denied:
            await open_mine(db.store, SETTINGS, "DDDD0001", "0000", NOW)
        assert denied.value.code == "wrong_pin"
    with pytest.raises(AccessDenied) as denied:
        await open_mine(db.store, SETTINGS, "DDDD0001", "0000", NOW)
    assert denied.value.code == "locked"
    with pytest.raises(AccessDenied) as denied:  # locked also against the right PIN
        await open_mine(db.store, SETTINGS, "DDDD0001", "1234", NOW + dt.timedelta(minutes=5))
    assert denied.value.code == "locked"
    mine = await open_mine(db.store, SETTINGS, "DDDD0001", "1234", NOW + dt.timedelta(hours=1))
    await cancel(db.store, mine, NOW + dt.timedelta(hours=1))
    with pytest.raises(AccessDenied) as denied:
        await open_mine(db.store, SETTINGS, "DDDD0001", "1234", NOW + dt.timedelta(hours=1))
    assert denied.value.code == "not_found"
    assert await check_invariants(db.store) == (1, 1)
    async with db.store.read() as tx:  # the PIN and contacts are not stored in plain text
        row = (await tx.conn.execute(select(reservations).where(
            reservations.c.rid == "DDDD0001"))).first()
    assert row is not None
    stored = " ".join(str(v) for v in row._mapping.values())
    for plain in ("1234", "09012345678", "resident@example.jp"):
        assert plain not in stored
