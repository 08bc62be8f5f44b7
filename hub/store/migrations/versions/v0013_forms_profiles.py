"""Online forms: a resident's saved details, reused across forms on request (F2), sealed and
kept one year after their last use (``hub.forms.profiles``).

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06
"""

from __future__ import annotations

from alembic import op

# Loading this script puts the table on the hub's ``metadata`` (as v0011 does).
from hub.forms.profiles import form_profiles

revision: str = "0013"
down_revision: str | None = "0012"
branch_labels: str | None = None
depends_on: str | None = None


def upgrade() -> None:
    form_profiles.create(op.get_bind())  # the table as declared, with its index


def downgrade() -> None:
    form_profiles.drop(op.get_bind())
