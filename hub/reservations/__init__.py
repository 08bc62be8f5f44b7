"""Reservations (R1-R10): time slots, reservation IDs, the booking window, residents' booking
pages. See README.md.

Nothing is imported here: ``madoguchi`` builds its command line from ``commands`` on every
start, and loading the tables (SQLAlchemy, Alembic) cost every ``edge run`` 1.2 s. The store and
the migration ``v0008`` import ``hub.reservations.tables`` themselves; ``module()`` imports the
pages when the app is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from hub.kit.module import Module

__all__ = ["module"]


def module() -> Module:
    """``/r…``: the residents' booking pages (public; the ID travels in signed page tokens)."""
    from hub.kit.module import Module
    from hub.reservations import manage, pages, staff

    return Module("reservations", pages.ROUTES + manage.ROUTES + staff.ROUTES,
                  templates=pages.TEMPLATES,
                  setup=pages.setup)
