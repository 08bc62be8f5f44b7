"""Schema migrations for the edge database, applied in order and recorded in ``migrations``.

A migration is a function of the sqlite-utils ``Database``; add new ones at the end, never edit
an applied one.
"""

from __future__ import annotations

import logging
from collections.abc import Callable

import sqlite_utils

_LOGGER = logging.getLogger(__name__)

Migration = Callable[[sqlite_utils.Database], None]


def _m1_initial(db: sqlite_utils.Database) -> None:
    db.table("events").create(
        {"seq": int, "id": str, "at": str, "day": str, "type": str, "data": str},
        pk="seq", not_null={"id", "at", "day", "type", "data"},
    )
    db.table("events").create_index(["id"], unique=True)
    # outbox: events not yet acknowledged by the hub (sync relay reads, hub ack deletes)
    db.table("outbox").create({"seq": int}, pk="seq", foreign_keys=[("seq", "events", "seq")])
    db.table("tickets").create(
        {
            "id": str, "day": str, "number": int, "lap": int, "origin_service": str,
            "service": str, "stage": int, "state": str, "channel": str, "lang": str,
            "priority": int, "token": str, "issued_at": str, "queued_at": str,
            "queue_seq": int, "counter": str, "target_counter": str, "called_at": str,
            "finished_at": str, "calls": int,
        },
        pk="id",
    )
    db.table("tickets").create_index(["token"], unique=True)
    db.table("tickets").create_index(["day", "number"])
    db.table("counters").create({"id": str, "open": int, "current": str}, pk="id")
    db.table("service_days").create(
        {"day": str, "service": str, "last_number": int, "lap": int, "issued": int},
        pk=("day", "service"),
    )
    db.table("meta").create({"key": str, "value": str}, pk="key")


def _m2_check_in(db: sqlite_utils.Database) -> None:
    db.table("tickets").add_column("checked_in_at", str)


def _m3_snapshots(db: sqlite_utils.Database) -> None:
    # the state at a seq (edge/domain/snapshot.py), written with the events of each day close
    db.table("snapshots").create(
        {"seq": int, "at": str, "day": str, "format": int, "state": bytes},
        pk="seq", not_null={"at", "format", "state"},
    )


MIGRATIONS: list[tuple[int, str, Migration]] = [
    (1, "initial: events, outbox, projections", _m1_initial),
    (2, "tickets.checked_in_at (web tickets checked in at the kiosk)", _m2_check_in),
    (3, "snapshots of the state at day close (start-up folds only what follows)",
     _m3_snapshots),
]

PROJECTION_TABLES = ("tickets", "counters", "service_days", "meta")


def migrate(db: sqlite_utils.Database) -> int:
    """Bring the schema up to date; returns the resulting version."""
    if "migrations" not in db.table_names():
        db.table("migrations").create({"version": int, "name": str}, pk="version")
    done = {row["version"] for row in db.table("migrations").rows}
    version = max(done, default=0)
    for num, name, fn in MIGRATIONS:
        if num in done:
            continue
        with db.conn:
            fn(db)
            db.table("migrations").insert({"version": num, "name": name})
        _LOGGER.info("applied migration %s: %s", num, name)
        version = num
    return version
