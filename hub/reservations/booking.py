"""Booking, cancelling and reading availability (R5, R6, R8). No aiohttp; time injected.

A booking is one database transaction: expire this ID's reservations whose date has passed,
take a place in the slot with one conditional ``UPDATE`` (``tables.py``), insert the reservation
with ``active_rid`` under its UNIQUE constraint. Either constraint failing rolls the whole
transaction back, so a lost race never leaves a place taken without a reservation. Residents see
only ○ / △ / × (``mark``), never a count.
"""

from __future__ import annotations

import datetime as _dt
import secrets
import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

from sqlalchemy import Row, and_, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncConnection

from edge.domain.calendar import Calendar
from hub.notify.crypto import seal
from hub.reservations.pins import check_pin, hash_pin
from hub.reservations.tables import reservation_ids, reservation_slots, reservations
from hub.reservations.window import TOKYO, Rules, window
from hub.settings import HubSettings
from hub.store import HubStore

Mark = Literal["free", "few", "full"]  # ○ △ ×
Refusal = Literal["unknown_id", "other_office", "not_bookable", "full", "already_booked",
                  "no_slot"]
MAX_PIN_FAILURES = 5
LOCKOUT = _dt.timedelta(minutes=30)


@dataclass(frozen=True)
class Policy:
    """Settings of the booking rules (issue 14 items 2-3)."""

    rules: Rules = field(default_factory=Rules)
    calendar: Calendar = field(default_factory=Calendar)
    main_office: str = "0001"  # Saturday slots exist only here
    saturday_any_id: bool = True  # every imported ID may book a Saturday slot at the main office


@dataclass(frozen=True)
class Slot:
    id: int
    office: str
    site: str
    service: str
    starts_at: _dt.datetime
    ends_at: _dt.datetime
    capacity: int
    booked: int
    published_at: _dt.datetime
    closed: bool


@dataclass(frozen=True)
class Booked:
    reservation: str
    token: str
    slot: Slot


class BookingRefused(Exception):
    def __init__(self, code: Refusal) -> None:
        super().__init__(code)
        self.code: Refusal = code


def mark(capacity: int, booked: int, closed: bool) -> Mark:
    """○ while two or more places are left, △ for the last one, × when full or closed."""
    left = capacity - booked
    if closed or left <= 0:
        return "full"
    return "few" if left == 1 else "free"


def _slot(row: Row[Any]) -> Slot:
    r = row._mapping
    return Slot(int(r["id"]), str(r["office"]), str(r["site"]), str(r["service"]),
                r["starts_at"], r["ends_at"], int(r["capacity"]), int(r["booked"]),
                r["published_at"], bool(r["closed"]))


def may_book(policy: Policy, slot: Slot, office: str, now: _dt.datetime) -> Refusal | None:
    """Why this ID (bound to ``office``) may not book ``slot`` now, or None."""
    local = slot.starts_at.astimezone(TOKYO)
    saturday = local.weekday() == 5
    if slot.office != office and not (saturday and policy.saturday_any_id
                                      and slot.office == policy.main_office):
        return "other_office"
    win = window(local.date(), policy.calendar, policy.rules, slot.published_at)
    if slot.closed or not win.contains(now.astimezone(TOKYO)):
        return "not_bookable"
    return None


async def book(store: HubStore, settings: HubSettings, policy: Policy, *, rid: str,
               slot_id: int, pin: str, phone: str | None, email: str | None, lang: str,
               now: _dt.datetime) -> Booked:
    """Book ``slot_id`` for ``rid``; raises ``BookingRefused`` with a stable code. What can be
    refused from a read (unknown ID, another office, outside the window, already full) is
    refused before the PIN is hashed; the transaction then decides for real."""
    await _precheck(store, policy, rid, slot_id, now)
    pin_hash = await hash_pin(settings, pin)  # outside the transaction: it holds no lock
    row_id = str(uuid.uuid4())
    keys, key_id = settings.keys, settings.key_id
    phone_sealed = seal(keys, key_id, row_id, phone) if phone else None
    email_sealed = seal(keys, key_id, row_id, email) if email else None
    token = secrets.token_urlsafe(24)
    try:
        async with store.begin() as tx:
            c = tx.conn
            slot = await _bookable(c, policy, rid, slot_id, now)
            await _expire_past(c, rid, now)
            await _take_place(c, slot_id)
            await c.execute(reservations.insert().values(
                id=row_id, rid=rid, slot_id=slot_id, status="active", active_rid=rid,
                pin_hash=pin_hash, phone_sealed=phone_sealed, email_sealed=email_sealed,
                lang=lang, token=token, created_at=now, updated_at=now))
    except IntegrityError:  # uq_reservation_active_rid: this ID holds an active reservation
        raise BookingRefused("already_booked") from None
    return Booked(row_id, token, slot)


async def _bookable(c: AsyncConnection, policy: Policy, rid: str, slot_id: int,
                    now: _dt.datetime) -> Slot:
    """The slot, if this ID may book it now (its office, the window); else ``BookingRefused``."""
    office = (await c.execute(select(reservation_ids.c.office)
                              .where(reservation_ids.c.rid == rid))).scalar()
    if office is None:
        raise BookingRefused("unknown_id")
    got = (await c.execute(select(reservation_slots)
                           .where(reservation_slots.c.id == slot_id))).first()
    if got is None:
        raise BookingRefused("no_slot")
    slot = _slot(got)
    why = may_book(policy, slot, str(office), now)
    if why is not None:
        raise BookingRefused(why)
    return slot


async def _precheck(store: HubStore, policy: Policy, rid: str, slot_id: int,
                    now: _dt.datetime) -> None:
    """The same checks on a read, plus "already full", before the PIN is hashed."""
    async with store.read() as tx:
        slot = await _bookable(tx.conn, policy, rid, slot_id, now)
    if slot.booked >= slot.capacity:
        raise BookingRefused("full")


async def _take_place(c: AsyncConnection, slot_id: int) -> None:
    """One place of the slot, in one conditional statement (the capacity rule, ``tables.py``);
    ``BookingRefused("full")`` when none is left or the slot is closed."""
    taken = await c.execute(
        update(reservation_slots)
        .where(and_(reservation_slots.c.id == slot_id,
                    reservation_slots.c.booked < reservation_slots.c.capacity,
                    reservation_slots.c.closed.is_(False)))
        .values(booked=reservation_slots.c.booked + 1))
    if taken.rowcount != 1:
        raise BookingRefused("full")


async def _expire_past(c: AsyncConnection, rid: str, now: _dt.datetime) -> None:
    """An active reservation whose date has passed (a slot before today, Tokyo) no longer
    blocks its ID (R8: "until the reservation date has passed or it is cancelled")."""
    today = now.astimezone(TOKYO).replace(hour=0, minute=0, second=0, microsecond=0)
    ended = select(reservation_slots.c.id).where(reservation_slots.c.starts_at < today)
    await c.execute(
        update(reservations)
        .where(and_(reservations.c.active_rid == rid, reservations.c.slot_id.in_(ended)))
        .values(status="past", active_rid=None, updated_at=now))


async def availability(store: HubStore, office: str, since: _dt.datetime,
                       until: _dt.datetime) -> list[tuple[int, _dt.datetime, Mark]]:
    """The office's slots in [since, until) with ○/△/× only."""
    return [(i, s, m) for i, s, m, _p in await availability_with_publish(store, office, since,
                                                                         until)]


async def availability_with_publish(
        store: HubStore, office: str, since: _dt.datetime,
        until: _dt.datetime) -> list[tuple[int, _dt.datetime, Mark, _dt.datetime]]:
    """As ``availability``, with each slot's publication time (its window opens no earlier)."""
    async with store.read() as tx:
        rows = (await tx.conn.execute(
            select(reservation_slots.c.id, reservation_slots.c.starts_at,
                   reservation_slots.c.capacity, reservation_slots.c.booked,
                   reservation_slots.c.closed, reservation_slots.c.published_at)
            .where(and_(reservation_slots.c.office == office,
                        reservation_slots.c.starts_at >= since,
                        reservation_slots.c.starts_at < until))
            .order_by(reservation_slots.c.starts_at))).all()
    return [(int(i), s, mark(int(cap), int(b), bool(cl)), p) for i, s, cap, b, cl, p in rows]


async def slot(store: HubStore, slot_id: int) -> Slot | None:
    async with store.read() as tx:
        got = (await tx.conn.execute(select(reservation_slots)
                                     .where(reservation_slots.c.id == slot_id))).first()
    return None if got is None else _slot(got)


async def by_id(store: HubStore, reservation: str) -> Mine | None:
    """An active reservation by its row id (after the PIN was checked: ``open_mine``)."""
    async with store.read() as tx:
        row = (await tx.conn.execute(select(reservations.c.token).where(and_(
            reservations.c.id == reservation, reservations.c.status == "active")))).first()
    if row is None:
        return None
    found = await by_token(store, str(row[0]))
    return None if found is None else found[0]


async def by_token(store: HubStore, token: str) -> tuple[Mine, str] | None:
    """A reservation by its confirmation token (the QR's capability) and its status."""
    if not 10 <= len(token) <= 64:
        return None
    async with store.read() as tx:
        row = (await tx.conn.execute(select(reservations)
                                     .where(reservations.c.token == token))).first()
        if row is None:
            return None
        r = row._mapping
        got = (await tx.conn.execute(select(reservation_slots)
                                     .where(reservation_slots.c.id == r["slot_id"]))).first()
    if got is None:
        return None
    return Mine(str(r["id"]), str(r["rid"]), _slot(got), token, str(r["lang"])), str(r["status"])


async def add_slots(store: HubStore, slots: Sequence[dict[str, object]]) -> int:
    """Insert slots (from ``slots.pattern``); returns how many were new (an existing office,
    counter group and start is left as it is)."""
    added = 0
    async with store.begin() as tx:
        for s in slots:
            exists = (await tx.conn.execute(select(reservation_slots.c.id).where(and_(
                reservation_slots.c.office == s["office"],
                reservation_slots.c.counter_group == s["counter_group"],
                reservation_slots.c.starts_at == s["starts_at"])))).first()
            if exists is None:
                await tx.conn.execute(reservation_slots.insert().values(**s))
                added += 1
    return added




# --- the resident's own reservation: look up, change, cancel (ID + PIN) ------------------------

Denied = Literal["not_found", "wrong_pin", "locked"]


class AccessDenied(Exception):
    def __init__(self, code: Denied, until: _dt.datetime | None = None) -> None:
        super().__init__(code)
        self.code: Denied = code
        self.until = until


@dataclass(frozen=True)
class Mine:
    reservation: str
    rid: str
    slot: Slot
    token: str
    lang: str


async def _active(c: AsyncConnection, rid: str) -> Row[Any] | None:
    return (await c.execute(select(reservations).where(
        reservations.c.active_rid == rid))).first()


async def open_mine(store: HubStore, settings: HubSettings, rid: str, pin: str,
                    now: _dt.datetime) -> Mine:
    """The ID's active reservation if the PIN is right. Wrong PINs are counted per reservation;
    the fifth locks it for 30 minutes (also against the right PIN), so the 10,000 PINs cannot
    be tried; a right PIN resets the count."""
    async with store.read() as tx:
        row = await _active(tx.conn, rid)
    if row is None:
        await check_pin(settings, None, pin)  # the same time as a real check: no ID oracle
        raise AccessDenied("not_found")
    r = row._mapping
    if r["locked_until"] is not None and r["locked_until"] > now:
        raise AccessDenied("locked", r["locked_until"])
    ok = await check_pin(settings, str(r["pin_hash"]), pin)
    if not ok:
        async with store.begin() as tx:  # counted in the database: every hub process sees it
            failures = int((await tx.conn.execute(
                update(reservations).where(reservations.c.id == r["id"])
                .values(pin_failures=reservations.c.pin_failures + 1, updated_at=now)
                .returning(reservations.c.pin_failures))).scalar_one())
            locked = now + LOCKOUT if failures >= MAX_PIN_FAILURES else None
            if locked is not None:
                await tx.conn.execute(reservations.update()
                                      .where(reservations.c.id == r["id"])
                                      .values(pin_failures=0, locked_until=locked))
        raise AccessDenied("locked" if locked else "wrong_pin", locked)
    async with store.begin() as tx:
        if r["pin_failures"]:
            await tx.conn.execute(reservations.update().where(reservations.c.id == r["id"])
                                  .values(pin_failures=0, locked_until=None))
        slot = (await tx.conn.execute(select(reservation_slots).where(
            reservation_slots.c.id == r["slot_id"]))).first()
    assert slot is not None
    return Mine(str(r["id"]), rid, _slot(slot), str(r["token"]), str(r["lang"]))


async def cancel(store: HubStore, mine: Mine, now: _dt.datetime) -> None:
    """Cancel (after ``open_mine``): the place is given back in the same transaction."""
    async with store.begin() as tx:
        done = await tx.conn.execute(
            reservations.update()
            .where(and_(reservations.c.id == mine.reservation,
                        reservations.c.status == "active"))
            .values(status="cancelled", active_rid=None, updated_at=now))
        if done.rowcount == 1:
            await tx.conn.execute(
                update(reservation_slots).where(reservation_slots.c.id == mine.slot.id)
                .values(booked=reservation_slots.c.booked - 1))


async def change(store: HubStore, policy: Policy, mine: Mine, slot_id: int,
                 now: _dt.datetime) -> Slot:
    """Move the reservation to ``slot_id``: the new place is taken and the old one given back
    in one transaction, or nothing changes (``BookingRefused``)."""
    async with store.begin() as tx:
        c = tx.conn
        slot = await _bookable(c, policy, mine.rid, slot_id, now)
        await _take_place(c, slot_id)
        moved = await c.execute(
            reservations.update().where(and_(reservations.c.id == mine.reservation,
                                             reservations.c.status == "active"))
            .values(slot_id=slot_id, updated_at=now))
        if moved.rowcount != 1:
            raise BookingRefused("no_slot")  # cancelled meanwhile: the new place is rolled back
        await c.execute(update(reservation_slots)
                        .where(reservation_slots.c.id == mine.slot.id)
                        .values(booked=reservation_slots.c.booked - 1))
    return slot
