"""Index web tickets by token: a ticket page looks up a web ticket not yet folded by its token.

Revision ID: 0003
Revises: 0002
Create Date: 2026-12-03
"""

from __future__ import annotations

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    op.create_index("ix_web_tickets_token", "web_tickets", ["token"])


def downgrade() -> None:
    op.drop_index("ix_web_tickets_token", "web_tickets")
