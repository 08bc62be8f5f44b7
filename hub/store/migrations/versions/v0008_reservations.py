"""Reservations: reservation IDs, slots with capacity, bookings (issue 14).

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Loading this script puts the reservation tables on the hub's ``metadata`` (as v0007 does).
import hub.reservations.tables  # noqa: F401

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | None = None
depends_on: str | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "reservation_ids",
        sa.Column("rid", sa.String(8), primary_key=True),
        sa.Column("office", sa.String(4), nullable=False),
        sa.Column("imported_at", _TS, nullable=False),
        sa.Column("batch", sa.String(64), nullable=False),
    )
    op.create_table(
        "reservation_slots",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("office", sa.String(4), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("service", sa.String(8), nullable=False),
        sa.Column("counter_group", sa.String(32), nullable=False),
        sa.Column("starts_at", _TS, nullable=False),
        sa.Column("ends_at", _TS, nullable=False),
        sa.Column("capacity", sa.Integer, nullable=False),
        sa.Column("booked", sa.Integer, nullable=False, server_default="0"),
        sa.Column("published_at", _TS, nullable=False),
        sa.Column("closed", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.CheckConstraint("capacity >= 0", name="ck_slot_capacity"),
        sa.CheckConstraint("booked >= 0", name="ck_slot_booked"),
        sa.UniqueConstraint("office", "counter_group", "starts_at", name="uq_slot_time"),
    )
    op.create_index("ix_slot_office_start", "reservation_slots", ["office", "starts_at"])
    op.create_table(
        "reservations",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("rid", sa.String(8), nullable=False),
        sa.Column("slot_id", sa.Integer, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("active_rid", sa.String(8), nullable=True),
        sa.Column("pin_hash", sa.Text, nullable=False),
        sa.Column("pin_failures", sa.Integer, nullable=False, server_default="0"),
        sa.Column("locked_until", _TS, nullable=True),
        sa.Column("phone_sealed", sa.Text, nullable=True),
        sa.Column("email_sealed", sa.Text, nullable=True),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("token", sa.String(64), nullable=False, unique=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("checked_in_at", _TS, nullable=True),
        sa.Column("reminded_at", _TS, nullable=True),
        sa.UniqueConstraint("active_rid", name="uq_reservation_active_rid"),
        sa.CheckConstraint("(status = 'active') = (active_rid IS NOT NULL)",
                           name="ck_reservation_active"),
    )
    op.create_index("ix_reservation_slot", "reservations", ["slot_id"])
    op.create_index("ix_reservation_rid", "reservations", ["rid"])


def downgrade() -> None:
    op.drop_table("reservations")
    op.drop_table("reservation_slots")
    op.drop_table("reservation_ids")
