"""The bookings the hub pushes to a site (``edge/sync/reservations.py``): only the token's hash
travels, a booking checks in on its own day only, a malformed list is refused whole and the
kept one stays, the list survives a restart (kept in the database)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from edge.store.store import EventStore
from edge.sync.reservations import ReservationBook, key_of, reservation_follower

TOKEN = "Zx9-token-of-a-resident-0123456789"


def message(version: str, items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"v": 1, "site": "s1", "version": version, "items": items}


ITEM = {"key": key_of(TOKEN), "service": "M", "starts": "2027-01-20T09:00:00+09:00",
        "ends": "2027-01-20T09:30:00+09:00"}


async def test_pushed_bookings_check_in_on_their_day_and_survive_a_restart(
        tmp_path: Path) -> None:
    store = EventStore(tmp_path / "edge.db", "s1")
    book = ReservationBook()
    follower = reservation_follower(book)

    async def run_db(fn: Callable[[EventStore], None]) -> None:
        fn(store)

    await follower.handle(message("v1", [ITEM]), run_db)
    assert key_of(TOKEN) == hashlib.sha256(TOKEN.encode()).hexdigest()
    found = book.find(TOKEN, "2027-01-20")
    assert found is not None
    assert found.service == "M"
    assert book.find(TOKEN, "2027-01-21") is None  # another day: not checked in
    assert book.find("someone-else-token", "2027-01-20") is None

    await follower.handle(message("v2", [{**ITEM, "key": "not-hex"}]), run_db)
    assert follower.error is not None
    assert book.version == "v1"  # the kept list stays
    assert ReservationBook.load(store).find(TOKEN, "2027-01-20") is not None  # after a restart

    await follower.handle(message("v3", []), run_db)  # the last booking cancelled
    assert len(book) == 0
    assert len(ReservationBook.load(store)) == 0
