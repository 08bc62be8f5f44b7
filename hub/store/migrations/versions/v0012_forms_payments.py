"""Fees of online forms: one row per payment attempt of a submission (issue 17, F3).

Revision ID: 0012
Revises: 0011
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

# Loading this script puts the form tables on the hub's ``metadata`` (as v0011 does).
from hub.forms.tables import form_payments

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    # ``checkfirst``: v0011 creates every table of ``hub.forms.tables.TABLES``, which lists
    # this one too, so a database made from scratch already has it when this step runs
    form_payments.create(op.get_bind(), checkfirst=True)


def downgrade() -> None:
    form_payments.drop(op.get_bind(), checkfirst=True)
