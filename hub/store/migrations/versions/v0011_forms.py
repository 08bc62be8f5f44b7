"""Online forms: forms and their versions, residents' drafts and submissions (sealed), history,
attachments, one-time codes, webhook deliveries, page views (issue 17).

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

# Loading this script puts the form tables on the hub's ``metadata`` (as v0007 does).
from hub.forms.tables import TABLES

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    bind = op.get_bind()
    for table in TABLES:  # the tables as declared, with their indexes (one definition only)
        table.create(bind)


def downgrade() -> None:
    bind = op.get_bind()
    for table in reversed(TABLES):  # later steps' tables too (TABLES lists them): dropped already
        table.drop(bind, checkfirst=True)
