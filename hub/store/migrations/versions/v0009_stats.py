"""Statistics: the rollup cells, CSV column sets, page views per site (issue 15).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

# Loading this script puts the statistics tables on the hub's ``metadata`` (as v0007 does).
import hub.stats.tables  # noqa: F401

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_table(
        "stats_rollup",
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("day", sa.String(10), nullable=False),
        sa.Column("measure", sa.String(16), nullable=False),
        sa.Column("hour", sa.SmallInteger, nullable=False),
        sa.Column("service", sa.String(8), nullable=False),
        sa.Column("counter", sa.String(16), nullable=False),
        sa.Column("staff", sa.String(64), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("bucket", sa.SmallInteger, nullable=False),
        sa.Column("n", sa.BigInteger, nullable=False),
        sa.Column("total", sa.Float, nullable=False),
        sa.Column("max_s", sa.Float, nullable=False),
        sa.PrimaryKeyConstraint("site", "day", "measure", "hour", "service", "counter", "staff",
                                "channel", "bucket", name="pk_stats_rollup"),
    )
    op.create_index("ix_stats_rollup_day", "stats_rollup", ["day", "measure"])
    op.create_table(
        "stats_column_sets",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("owner", sa.String(128), nullable=False),
        sa.Column("report", sa.String(16), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("columns", sa.Text, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_by", sa.String(128), nullable=False),
        sa.UniqueConstraint("owner", "report", "name", name="uq_stats_column_set"),
    )
    # W8: page views per site as well as per page ("" for pages of no one site)
    with op.batch_alter_table("web_access", recreate="auto") as batch:
        batch.add_column(sa.Column("site", sa.String(64), nullable=False, server_default=""))
        batch.drop_constraint("pk_web_access", type_="primary")
        batch.create_primary_key("pk_web_access", ["page", "site", "hour"])


def downgrade() -> None:
    with op.batch_alter_table("web_access", recreate="auto") as batch:
        batch.drop_constraint("pk_web_access", type_="primary")
        batch.drop_column("site")
        batch.create_primary_key("pk_web_access", ["page", "hour"])
    op.drop_table("stats_column_sets")
    op.drop_index("ix_stats_rollup_day", table_name="stats_rollup")
    op.drop_table("stats_rollup")
