"""The bookings each site needs to check residents in while the hub is unreachable.

For each site: the active reservations whose slot is today or tomorrow (Tokyo), as the SHA-256
of the QR token (never the token: it is the resident's capability), the service and the slot's
time. Published retained on ``{prefix}/sites/{site}/reservations`` (``edge/sync/reservations.py``
takes it) by the ingest service's config loop when the list's digest changed, so a booking or a
cancellation reaches the site within one poll; sites with no booking get an empty list, so the
last cancellation is pushed too.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import json
import logging
from typing import Any

from pydantic import ValidationError
from sqlalchemy import and_, select

from edge.protocol import ReservationEntry, ReservationsMessage
from hub.reservations.tables import reservation_slots, reservations
from hub.reservations.window import TOKYO
from hub.store.store import Tx

_LOGGER = logging.getLogger(__name__)


async def site_lists(tx: Tx, sites: list[str], now: _dt.datetime) -> dict[str, dict[str, Any]]:
    """Site id -> the ``reservations`` message for it (``version``: the content's digest)."""
    today = now.astimezone(TOKYO).replace(hour=0, minute=0, second=0, microsecond=0)
    rows = (await tx.conn.execute(
        select(reservations.c.token, reservation_slots.c.site, reservation_slots.c.service,
               reservation_slots.c.starts_at, reservation_slots.c.ends_at)
        .join(reservation_slots, reservation_slots.c.id == reservations.c.slot_id)
        .where(and_(reservations.c.status == "active",
                    reservation_slots.c.starts_at >= today,
                    reservation_slots.c.starts_at < today + _dt.timedelta(days=2)))
        .order_by(reservation_slots.c.starts_at, reservations.c.id))).all()
    by_site: dict[str, list[ReservationEntry]] = {site: [] for site in sites}
    for token, site, service, starts, ends in rows:
        if site not in by_site:
            continue  # a site without a configuration at this hub: nobody to tell
        by_site[site].append(ReservationEntry(
            key=hashlib.sha256(str(token).encode("utf-8")).hexdigest(), service=str(service),
            starts=starts.astimezone(TOKYO).isoformat(), ends=ends.astimezone(TOKYO).isoformat()))
    out: dict[str, dict[str, Any]] = {}
    for site, items in by_site.items():
        plain = [e.model_dump() for e in items]
        digest = hashlib.sha256(json.dumps(plain, sort_keys=True).encode()).hexdigest()[:32]
        try:
            message = ReservationsMessage(site=site, version=digest, items=items)
        except ValidationError as exc:
            _LOGGER.warning("no reservation list for site %s: %s", site, exc.error_count())
            continue
        out[site] = message.to_wire()
    return out
