"""Staff accounts, roles per site, sessions, recovery codes, login failures (issue 12 items 3-4).

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | None = None
depends_on: str | None = None

_TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "staff",
        sa.Column("id", sa.String(36), primary_key=True),
        sa.Column("login", sa.String(64), nullable=False, unique=True),
        sa.Column("name", sa.String(128), nullable=False),
        sa.Column("password_hash", sa.Text, nullable=False),
        sa.Column("totp_sealed", sa.Text, nullable=True),
        sa.Column("totp_pending", sa.Text, nullable=True),
        sa.Column("disabled", sa.Boolean, nullable=False),
        sa.Column("networks", sa.Text, nullable=False),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("failed_since_login", sa.Integer, nullable=False),
        sa.Column("locked_until", _TS, nullable=True),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("last_login_at", _TS, nullable=True),
        sa.Column("last_logout_at", _TS, nullable=True),
    )
    op.create_table(
        "staff_roles",
        sa.Column("staff_id", sa.String(36), nullable=False),
        sa.Column("site", sa.String(64), nullable=False),
        sa.Column("role", sa.String(32), nullable=False),
        sa.PrimaryKeyConstraint("staff_id", "site", "role", name="pk_staff_roles"),
    )
    op.create_table(
        "staff_recovery",
        sa.Column("staff_id", sa.String(36), nullable=False),
        sa.Column("code_hash", sa.Text, nullable=False),
        sa.Column("used_at", _TS, nullable=True),
    )
    op.create_index("ix_staff_recovery_staff", "staff_recovery", ["staff_id"])
    op.create_table(
        "staff_sessions",
        sa.Column("id_hash", sa.String(64), primary_key=True),
        sa.Column("staff_id", sa.String(36), nullable=False),
        sa.Column("stage", sa.String(8), nullable=False),
        sa.Column("created_at", _TS, nullable=False),
        sa.Column("seen_at", _TS, nullable=False),
        sa.Column("ip", sa.String(64), nullable=True),
        sa.Column("prev_login_at", _TS, nullable=True),
        sa.Column("prev_logout_at", _TS, nullable=True),
        sa.Column("prev_failed", sa.Integer, nullable=False),
    )
    op.create_index("ix_staff_sessions_staff", "staff_sessions", ["staff_id"])
    op.create_table(
        "staff_login_failures",
        sa.Column("address", sa.String(64), primary_key=True),
        sa.Column("failed", sa.Integer, nullable=False),
        sa.Column("locked_until", _TS, nullable=True),
        sa.Column("updated_at", _TS, nullable=False),
    )


def downgrade() -> None:
    op.drop_table("staff_login_failures")
    op.drop_index("ix_staff_sessions_staff", "staff_sessions")
    op.drop_table("staff_sessions")
    op.drop_index("ix_staff_recovery_staff", "staff_recovery")
    op.drop_table("staff_recovery")
    op.drop_table("staff_roles")
    op.drop_table("staff")
