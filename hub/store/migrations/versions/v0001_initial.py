"""Initial hub schema: events, sites, site configs and the per-site projections.

Revision ID: 0001
Revises:
Create Date: 2025-01-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0001"
down_revision: str | None = None
branch_labels: str | None = None
depends_on: str | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "events",
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("received_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("site", "seq", name="pk_events"),
        sa.UniqueConstraint("id", name="uq_events_id"),
    )
    op.create_table(
        "sites",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("last_seq_contiguous", sa.BigInteger, nullable=False),
        sa.Column("last_seq_received", sa.BigInteger, nullable=False),
        sa.Column("last_event_at", _TS, nullable=True),
        sa.Column("online", sa.Boolean, nullable=False),
        sa.Column("session", sa.String(64), nullable=True),
        sa.Column("status", sa.Text, nullable=True),
        sa.Column("config_version_applied", sa.Integer, nullable=True),
        sa.Column("projection", sa.String(16), nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
    )
    op.create_table(
        "site_configs",
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer, nullable=False, autoincrement=False),
        sa.Column("toml", sa.Text, nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("site", "version", name="pk_site_configs"),
    )
    op.create_table(
        "site_queues",
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("service", sa.String(8), nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("waiting", sa.Integer, nullable=False),
        sa.Column("second_wait", sa.Integer, nullable=False),
        sa.Column("issued", sa.Integer, nullable=False),
        sa.Column("open_counters", sa.Integer, nullable=False),
        sa.Column("estimate_low_s", sa.Integer, nullable=True),
        sa.Column("estimate_high_s", sa.Integer, nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
        sa.PrimaryKeyConstraint("site", "service", name="pk_site_queues"),
    )
    op.create_table(
        "site_counters",
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("counter", sa.String(16), nullable=False),
        sa.Column("open", sa.Boolean, nullable=False),
        sa.Column("current_number", sa.Integer, nullable=True),
        sa.Column("current_service", sa.String(8), nullable=True),
        sa.PrimaryKeyConstraint("site", "counter", name="pk_site_counters"),
    )
    op.create_table(
        "site_devices",
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("device", sa.String(64), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("reason", sa.String(64), nullable=True),
        sa.Column("since", sa.String(40), nullable=True),
        sa.PrimaryKeyConstraint("site", "device", name="pk_site_devices"),
    )


def downgrade() -> None:
    for table in ("site_devices", "site_counters", "site_queues", "site_configs", "sites",
                  "events"):
        op.drop_table(table)
