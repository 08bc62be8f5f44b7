"""Bookings pushed by the hub, so a resident's QR checks in at the kiosk while the hub is down.

The hub publishes, retained on ``{prefix}/sites/{site}/reservations``, today's and tomorrow's
bookings at this site (``hub/reservations/edge_push.py``): for each, the SHA-256 of its QR
token, the service and the slot's time. The token itself never leaves the hub: a scanned QR is
hashed here and looked up. The newest list is kept in the database (``meta``), so a restarted
edge still checks residents in; the list is replaced whole, so a cancelled booking disappears.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from edge.protocol import ReservationList, WireError
from edge.store.store import EventStore
from edge.sync.pushed import PushedFollower, load_kept

_LOGGER = logging.getLogger(__name__)

META_RESERVATIONS = "sync.reservations"
RunDb = Callable[[Callable[[EventStore], None]], Awaitable[None]]


@dataclass(frozen=True, slots=True)
class Booking:
    key: str  # sha256 of the QR token, hex
    service: str
    starts: datetime
    ends: datetime


def key_of(token: str) -> str:
    return hashlib.sha256(token.encode("utf-8")).hexdigest()


def parse_message(raw: dict[str, Any]) -> tuple[str, list[Booking]] | str:
    try:
        msg = ReservationList.from_raw(raw)
    except WireError as exc:
        return str(exc)
    return msg.version, [Booking(e.key, e.service, datetime.fromisoformat(e.starts),
                                 datetime.fromisoformat(e.ends)) for e in msg.items]


class ReservationBook:
    """The bookings this site may check in, as last pushed by the hub."""

    def __init__(self, bookings: Iterable[Booking] = (), version: str = "") -> None:
        self._by_key = {b.key: b for b in bookings}
        self.version = version

    def __len__(self) -> int:
        return len(self._by_key)

    def replace(self, bookings: Iterable[Booking], version: str) -> None:
        self._by_key = {b.key: b for b in bookings}
        self.version = version

    def find(self, token: str, today: str) -> Booking | None:
        """The booking of a scanned token, if it is for ``today`` (site date, ISO)."""
        found = self._by_key.get(key_of(token))
        if found is None or found.starts.date().isoformat() != today:
            return None
        return found

    @classmethod
    def load(cls, store: EventStore) -> ReservationBook:
        kept = load_kept(store, META_RESERVATIONS, parse_message, "reservation list")
        return cls() if kept is None else cls(kept[1], kept[0])


def reservation_follower(book: ReservationBook) -> PushedFollower[Booking]:
    """Takes each pushed reservation list (``edge/sync/pushed.py``)."""

    def keep(version: str, bookings: list[Booking]) -> str:
        return json.dumps({"version": version, "items": [
            {"key": b.key, "service": b.service, "starts": b.starts.isoformat(),
             "ends": b.ends.isoformat()} for b in bookings]})

    return PushedFollower(book, parse=parse_message, keep=keep, meta_key=META_RESERVATIONS,
                          what="reservations")
