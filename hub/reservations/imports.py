"""Importing reservation-ID files into the hub (R2, R3): all or nothing, idempotent.

``ids.parse`` decides what the file says; this stores it in one transaction. The same file
imported again changes nothing (each ID keeps its office, ``unchanged`` counts it); an ID moved
to another office by a newer file is updated and counted as ``moved``.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from dataclasses import dataclass, field

from sqlalchemy import select

from hub.reservations.ids import Layout, LineError, parse
from hub.reservations.tables import reservation_ids
from hub.store import HubStore


@dataclass
class Imported:
    added: int = 0
    unchanged: int = 0
    moved: int = 0
    errors: list[LineError] = field(default_factory=list)
    encoding: str = ""


async def import_ids(store: HubStore, data: bytes, now: _dt.datetime,
                     layout: Layout | None = None) -> Imported:
    parsed = parse(data, layout or Layout())
    out = Imported(errors=parsed.errors, encoding=parsed.encoding)
    if parsed.errors:
        return out  # nothing stored
    batch = hashlib.sha256(data).hexdigest()
    async with store.begin() as tx:
        known = {str(r): str(o) for r, o in (await tx.conn.execute(
            select(reservation_ids.c.rid, reservation_ids.c.office))).all()}
        for rid, office in parsed.rows.items():
            if rid not in known:
                await tx.conn.execute(reservation_ids.insert().values(
                    rid=rid, office=office, imported_at=now, batch=batch))
                out.added += 1
            elif known[rid] == office:
                out.unchanged += 1
            else:
                await tx.conn.execute(reservation_ids.update()
                                      .where(reservation_ids.c.rid == rid)
                                      .values(office=office, imported_at=now, batch=batch))
                out.moved += 1
    return out
