"""Staff exports and erasure of reservation data (R7, A4). No aiohttp.

Export: the reservations of an office and a date range as CSV in the columns and order staff
choose (``COLUMNS``), UTF-8 with a BOM or cp932 for Excel on the ward's PCs; contacts are opened
(decrypted) only here, for staff, and every export is audited with its filters and count.

Erasure: the reservations of chosen IDs are deleted (contacts, PIN hashes, the rows), places of
active ones are given back, and the IDs themselves are removed; on SQLite the file is vacuumed
so nothing remains in free pages. Contacts were sealed at rest in any case.
"""

from __future__ import annotations

import csv
import datetime as _dt
import hashlib
import io
import json
from collections.abc import Iterable
from dataclasses import dataclass

from sqlalchemy import Connection, and_, delete, select, update

from hub.notify.crypto import CryptoError, open_sealed
from hub.reservations.tables import reservation_ids, reservation_slots, reservations
from hub.reservations.window import TOKYO
from hub.settings import HubSettings
from hub.store import HubStore
from hub.store.schema import events

COLUMNS: dict[str, tuple[str, str]] = {  # key -> (ja header, en header)
    "rid": ("予約ID", "Reservation ID"),
    "office": ("区民事務所コード", "Office code"),
    "date": ("予約日", "Date"),
    "time": ("開始時刻", "Start"),
    "end": ("終了時刻", "End"),
    "group": ("窓口グループ", "Counter group"),
    "status": ("状態", "Status"),
    "email": ("メールアドレス", "E-mail"),
    "phone": ("電話番号", "Phone"),
    "booked_at": ("予約日時", "Booked at"),
    "checked_in": ("来庁", "Checked in"),
}
DEFAULT_COLUMNS = ("rid", "office", "date", "time", "status", "email", "phone")
STATUS_JA = {"active": "予約中", "cancelled": "取消", "past": "終了", "erased": "削除"}


@dataclass(frozen=True)
class Export:
    data: bytes
    rows: int


async def export_csv(store: HubStore, settings: HubSettings, *, office: str,
                     first: _dt.date, last: _dt.date, columns: Iterable[str],
                     encoding: str = "utf-8-sig") -> Export:
    cols = [c for c in columns if c in COLUMNS] or list(DEFAULT_COLUMNS)
    since = _dt.datetime.combine(first, _dt.time(0), TOKYO)
    until = _dt.datetime.combine(last + _dt.timedelta(days=1), _dt.time(0), TOKYO)
    async with store.read() as tx:
        got = (await tx.conn.execute(
            select(reservations, reservation_slots.c.office, reservation_slots.c.starts_at,
                   reservation_slots.c.ends_at, reservation_slots.c.counter_group)
            .join(reservation_slots, reservation_slots.c.id == reservations.c.slot_id)
            .where(and_(reservation_slots.c.office == office,
                        reservation_slots.c.starts_at >= since,
                        reservation_slots.c.starts_at < until))
            .order_by(reservation_slots.c.starts_at, reservations.c.created_at))).all()
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow([COLUMNS[c][0] for c in cols])
    for row in got:
        r = row._mapping
        starts = r["starts_at"].astimezone(TOKYO)
        values = {
            "rid": r["rid"], "office": r["office"], "date": starts.date().isoformat(),
            "time": starts.strftime("%H:%M"),
            "end": r["ends_at"].astimezone(TOKYO).strftime("%H:%M"),
            "group": r["counter_group"], "status": STATUS_JA.get(r["status"], r["status"]),
            "email": _open(settings, r["id"], r["email_sealed"]),
            "phone": _open(settings, r["id"], r["phone_sealed"]),
            "booked_at": r["created_at"].astimezone(TOKYO).strftime("%Y-%m-%d %H:%M"),
            "checked_in": "" if r["checked_in_at"] is None else "済",
        }
        writer.writerow([values[c] for c in cols])
    text_out = out.getvalue()
    data = text_out.encode("cp932", errors="replace") if encoding == "cp932" \
        else text_out.encode("utf-8-sig")
    return Export(data, len(got))


def _open(settings: HubSettings, row_id: str, sealed: str | None) -> str:
    if not sealed:
        return ""
    try:
        return open_sealed(settings.keys, row_id, sealed)
    except CryptoError:
        return "(鍵なし / key missing)"


def _checkpoint(sync_conn: Connection) -> None:
    cur = sync_conn.connection.dbapi_connection.cursor()  # type: ignore[union-attr]
    try:
        cur.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    finally:
        cur.close()


@dataclass(frozen=True)
class Visit:
    rid: str
    starts: _dt.datetime
    group: str
    state: str  # "arrived" | "expected" | "no_show"
    number: int | None  # the ticket number the kiosk gave, once arrived


async def today(store: HubStore, office: str, now: _dt.datetime) -> list[Visit]:
    """The office's reservations of the day with who has arrived: a booking's priority ticket
    issued at a site (its ``TicketIssued`` event carries the booking's key, the SHA-256 of its
    QR token) is an arrival; a slot ended without one is a no-show."""
    local = now.astimezone(TOKYO)
    start = _dt.datetime.combine(local.date(), _dt.time(0), TOKYO)
    async with store.read() as tx:
        booked = (await tx.conn.execute(
            select(reservations.c.rid, reservations.c.token, reservation_slots.c.site,
                   reservation_slots.c.starts_at, reservation_slots.c.ends_at,
                   reservation_slots.c.counter_group)
            .join(reservation_slots, reservation_slots.c.id == reservations.c.slot_id)
            .where(and_(reservation_slots.c.office == office,
                        reservations.c.status.in_(("active", "past")),
                        reservation_slots.c.starts_at >= start,
                        reservation_slots.c.starts_at < start + _dt.timedelta(days=1)))
            .order_by(reservation_slots.c.starts_at))).all()
        sites = sorted({str(r[2]) for r in booked})
        issued = (await tx.conn.execute(
            select(events.c.data).where(and_(events.c.site.in_(sites),
                                             events.c.day == local.date().isoformat(),
                                             events.c.type == "TicketIssued")))).all()
    arrived: dict[str, int] = {}
    for (raw,) in issued:
        data = json.loads(raw)
        if isinstance(data, dict) and isinstance(data.get("reservation"), str):
            arrived[data["reservation"]] = int(data.get("number", 0))
    out = []
    for rid, token, _site, starts, ends, group in booked:
        key = hashlib.sha256(str(token).encode("utf-8")).hexdigest()
        number = arrived.get(key)
        state = "arrived" if number is not None else ("no_show" if ends <= now else "expected")
        out.append(Visit(str(rid), starts.astimezone(TOKYO), str(group), state, number))
    return out


@dataclass(frozen=True)
class Erased:
    ids: int
    reservations: int
    places_returned: int


async def erase(store: HubStore, rids: Iterable[str]) -> Erased:
    """Remove every trace of these IDs: their reservations (contacts, PIN hashes) and the IDs;
    the places of active reservations are given back. One transaction."""
    wanted = sorted(set(rids))
    if not wanted:
        return Erased(0, 0, 0)
    async with store.begin() as tx:
        c = tx.conn
        active = (await c.execute(select(reservations.c.slot_id).where(and_(
            reservations.c.rid.in_(wanted), reservations.c.status == "active")))).all()
        for (slot_id,) in active:
            await c.execute(update(reservation_slots).where(reservation_slots.c.id == slot_id)
                            .values(booked=reservation_slots.c.booked - 1))
        gone = await c.execute(delete(reservations).where(reservations.c.rid.in_(wanted)))
        ids = await c.execute(delete(reservation_ids).where(reservation_ids.c.rid.in_(wanted)))
    if store.engine.dialect.name == "sqlite":
        # the store deletes with secure_delete (freed cells are zeroed); the write-ahead log
        # still holds the pages as they were written: fold it into the file and empty it
        async with store.engine.connect() as conn:
            await conn.run_sync(_checkpoint)
    return Erased(int(ids.rowcount or 0), int(gone.rowcount or 0), len(active))
