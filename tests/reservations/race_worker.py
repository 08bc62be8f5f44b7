"""One hub process of the two-process race (tests/reservations/test_booking_db.py): books
every (rid, slot) pair it is given, all at once, and prints one JSON line of outcome counts."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import sys

from hub.reservations.booking import BookingRefused, Policy, book
from hub.settings import HubSettings
from hub.store import HubStore

SETTINGS = HubSettings(keys={"t1": bytes(range(32))}, key_id="t1")


async def main(url: str, schema: str, now_iso: str, pairs: list[tuple[str, int]]) -> None:
    store = await HubStore.open(url, schema=schema)
    now = dt.datetime.fromisoformat(now_iso)
    counts: dict[str, int] = {}

    async def one(rid: str, slot: int) -> None:
        try:
            await book(store, SETTINGS, Policy(), rid=rid, slot_id=slot, pin="1234", phone=None,
                       email=None, lang="ja", now=now)
            code = "booked"
        except BookingRefused as exc:
            code = exc.code
        counts[code] = counts.get(code, 0) + 1

    try:
        await asyncio.gather(*(one(r, s) for r, s in pairs))
    finally:
        await store.close()
    print(json.dumps(counts))


if __name__ == "__main__":
    url, schema, now_iso, raw = sys.argv[1:5]
    asyncio.run(main(url, schema, now_iso, [tuple(p) for p in json.loads(raw)]))
