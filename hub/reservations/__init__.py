"""Reservations (R1-R10): time slots, reservation IDs, the booking window, residents' booking
pages. See README.md.

Only the tables are imported here (the migration ``v0008`` imports them for the one metadata);
``module()`` imports the pages when the app is built.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from hub.reservations import tables

if TYPE_CHECKING:
    from hub.kit.module import Module

__all__ = ["module", "tables"]


def module() -> Module:
    """``/r…``: the residents' booking pages (public; the ID travels in signed page tokens)."""
    from hub.kit.module import Module
    from hub.reservations import manage, pages, staff

    return Module("reservations", pages.ROUTES + manage.ROUTES + staff.ROUTES,
                  templates=pages.TEMPLATES,
                  setup=pages.setup)
