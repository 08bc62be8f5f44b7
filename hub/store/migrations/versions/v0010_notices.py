"""Online notices: notices, their recipients (sealed) and their PDF files (issue 16).

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05
"""

from __future__ import annotations

from alembic import op

# Loading this script puts the notice tables on the hub's ``metadata`` (as v0007 does).
from hub.notices.tables import notice_files, notice_recipients, notices

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | None = None
depends_on: str | None = None

TABLES = (notices, notice_recipients, notice_files)


def upgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:  # the tables as declared, with their indexes (one definition only)
        table.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(TABLES):
        table.drop(bind)
