"""The reservation tables on the hub's one ``metadata`` (migration ``v0008_reservations``).

Rules the database itself enforces, so that no code path and no second hub process can break
them (issue 14 items 4 and 7):

- **capacity**: a booking takes a place with one conditional ``UPDATE … SET booked = booked + 1
  WHERE id = :slot AND booked < capacity AND NOT closed``: atomic on SQLite (one writer) and on
  PostgreSQL (the row lock re-checks the condition); 0 rows means full. ``booked`` may exceed a
  later-reduced ``capacity``: staff reduce a slot without cancelling who already booked.
- **one active reservation per ID**: ``active_rid`` holds the ID while the reservation is active
  and NULL otherwise, under a UNIQUE constraint (NULLs never collide, on both databases), so a
  second active reservation of one ID fails to insert.

Personal data: phone and e-mail are sealed (AES-GCM, ``hub.notify.crypto``, bound to the row);
the PIN is an argon2id hash of a keyed HMAC (a dump without the hub's key cannot be searched
through the 10,000 PINs).
"""

from __future__ import annotations

from sqlalchemy import (
    Boolean,
    CheckConstraint,
    Column,
    Index,
    Integer,
    String,
    Table,
    Text,
    UniqueConstraint,
    false,
)

from hub.store.schema import SITE, UtcDateTime, metadata

reservation_ids = Table(
    "reservation_ids", metadata,
    Column("rid", String(8), primary_key=True),  # 8 of A-Z0-9, normalised (ids.normalise_id)
    Column("office", String(4), nullable=False),  # the ward's 4-digit office code
    Column("imported_at", UtcDateTime, nullable=False),
    Column("batch", String(64), nullable=False),  # sha256 of the file it came from
)

reservation_slots = Table(
    "reservation_slots", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("office", String(4), nullable=False),
    Column("site", SITE, nullable=False),  # the edge site where the visitor checks in
    Column("service", String(8), nullable=False),  # the service the priority ticket is for
    Column("counter_group", String(32), nullable=False),
    Column("starts_at", UtcDateTime, nullable=False),
    Column("ends_at", UtcDateTime, nullable=False),
    Column("capacity", Integer, nullable=False),
    Column("booked", Integer, nullable=False, server_default="0"),
    Column("published_at", UtcDateTime, nullable=False),  # bookable from then (and the window)
    Column("closed", Boolean, nullable=False, server_default=false()),
    CheckConstraint("capacity >= 0", name="ck_slot_capacity"),
    CheckConstraint("booked >= 0", name="ck_slot_booked"),
    UniqueConstraint("office", "counter_group", "starts_at", name="uq_slot_time"),
)
Index("ix_slot_office_start", reservation_slots.c.office, reservation_slots.c.starts_at)

reservations = Table(
    "reservations", metadata,
    Column("id", String(36), primary_key=True),
    Column("rid", String(8), nullable=False),
    Column("slot_id", Integer, nullable=False),
    Column("status", String(12), nullable=False),  # active | cancelled | past | erased
    Column("active_rid", String(8), nullable=True),  # = rid while active, else NULL (unique)
    Column("pin_hash", Text, nullable=False),
    Column("pin_failures", Integer, nullable=False, server_default="0"),
    Column("locked_until", UtcDateTime, nullable=True),
    Column("phone_sealed", Text, nullable=True),
    Column("email_sealed", Text, nullable=True),
    Column("lang", String(8), nullable=False),
    Column("token", String(64), nullable=False, unique=True),  # the QR's capability
    Column("created_at", UtcDateTime, nullable=False),
    Column("updated_at", UtcDateTime, nullable=False),
    Column("checked_in_at", UtcDateTime, nullable=True),
    Column("reminded_at", UtcDateTime, nullable=True),  # the day-before e-mail went out
    UniqueConstraint("active_rid", name="uq_reservation_active_rid"),
    CheckConstraint("(status = 'active') = (active_rid IS NOT NULL)",
                    name="ck_reservation_active"),
)
Index("ix_reservation_slot", reservations.c.slot_id)
Index("ix_reservation_rid", reservations.c.rid)
