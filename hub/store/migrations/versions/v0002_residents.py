"""Residents: web access counts (W8), web tickets (W4), notice subscriptions (W5-W7).

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-03
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | None = None
depends_on: str | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "web_access",
        sa.Column("page", sa.String(32), nullable=False),
        sa.Column("hour", sa.String(13), nullable=False),
        sa.Column("count", sa.BigInteger, nullable=False),
        sa.PrimaryKeyConstraint("page", "hour", name="pk_web_access"),
    )
    op.create_table(
        "web_tickets",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("service", sa.String(8), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("number", sa.Integer, nullable=True),
        sa.Column("token", sa.String(64), nullable=True),
        sa.Column("contact_hash", sa.String(64), nullable=True),
        sa.Column("state", sa.String(16), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_web_tickets_site_day", "web_tickets", ["site", "day", "service"])
    op.create_index("ix_web_tickets_contact", "web_tickets", ["contact_hash"])
    op.create_table(
        "notify_subscriptions",
        sa.Column("id", sa.String(64), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("ticket_id", sa.String(64), nullable=False),
        sa.Column("token_hash", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("contact_ct", sa.Text, nullable=True),
        sa.Column("key_id", sa.String(16), nullable=True),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("ahead_n", sa.Integer, nullable=False),
        sa.Column("sent_ahead_at", _TS, nullable=True),
        sa.Column("sent_called_at", _TS, nullable=True),
        sa.Column("erased_at", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
    )
    op.create_index("ix_notify_site", "notify_subscriptions", ["site", "ticket_id"])


def downgrade() -> None:
    for table in ("notify_subscriptions", "web_tickets", "web_access"):
        op.drop_table(table)
