"""Event integrity: quarantined events and ingest alerts (issue 12 item 7).

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "event_quarantine",
        sa.Column("qid", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=False, autoincrement=False),
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("at", sa.String(40), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("type", sa.String(64), nullable=False),
        sa.Column("data", sa.Text, nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.UniqueConstraint("site", "seq", "id", "reason", name="uq_event_quarantine"),
    )
    op.create_index("ix_event_quarantine_site", "event_quarantine", ["site", "seq"])
    op.create_table(
        "ingest_alerts",
        sa.Column("aid", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("reason", sa.String(32), nullable=False),
        sa.Column("seq", sa.BigInteger, nullable=True),
        sa.Column("detail", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_index("ix_ingest_alerts_site", "ingest_alerts", ["site", "created_at"])


def downgrade() -> None:
    op.drop_index("ix_ingest_alerts_site", "ingest_alerts")
    op.drop_table("ingest_alerts")
    op.drop_index("ix_event_quarantine_site", "event_quarantine")
    op.drop_table("event_quarantine")
