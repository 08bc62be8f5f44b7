"""Fleet alerts: staff-set rules per site, sealed recipients, incidents (issue 13 item 4).

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Loading this script (every hub start runs the migrations) puts the fleet tables on the hub's
# ``metadata`` too, so the schema comparison sees them even where nothing imported hub.fleet.
import hub.fleet.tables  # noqa: F401

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | None = None
depends_on: str | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "fleet_rules",
        sa.Column("site", sa.String(64), primary_key=True),
        sa.Column("rules", sa.Text, nullable=False),
        sa.Column("updated_at", _TS, nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=True),
    )
    op.create_table(
        "fleet_recipients",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("address_ct", sa.Text, nullable=False),
        sa.Column("lang", sa.String(8), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("created_by", sa.String(128), nullable=True),
    )
    op.create_index("ix_fleet_recipients_site", "fleet_recipients", ["site"])
    op.create_table(
        "fleet_incidents",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("rule", sa.String(32), nullable=False),
        sa.Column("subject", sa.String(64), nullable=False),
        sa.Column("opened_at", _TS, nullable=False),
        sa.Column("closed_at", _TS, nullable=True),
        sa.Column("detail", sa.Text, nullable=False),
        sa.Column("open_mail", sa.String(16), nullable=False),
        sa.Column("close_mail", sa.String(16), nullable=True),
    )
    op.create_index("ix_fleet_incidents_open", "fleet_incidents", ["closed_at", "site"])
    op.create_index("ix_fleet_incidents_opened", "fleet_incidents", ["opened_at"])


def downgrade() -> None:
    op.drop_index("ix_fleet_incidents_opened", "fleet_incidents")
    op.drop_index("ix_fleet_incidents_open", "fleet_incidents")
    op.drop_table("fleet_incidents")
    op.drop_index("ix_fleet_recipients_site", "fleet_recipients")
    op.drop_table("fleet_recipients")
    op.drop_table("fleet_rules")
